"""The transactional outbox: a side effect of a change is a row written in the change's own
transaction, so it is never lost and never sent for a change that rolled back.

`outbox_enqueue(task, kwargs)` writes an `OutboxMessage`; when the transaction commits, the
relay hands it to the broker (`apply_async`) and marks it sent. If the broker is down, the
request goes on (the message waits in the table) and `outbox_relay_due`, a periodic task,
sends what is still waiting after `RELAY_AFTER`. Delivery is at least once: a process that dies
between handing a message to the broker and marking it sent leaves it to the sweep, which sends
it again. Receivers are therefore idempotent: by nature (an evaluation that reads the current
state), or, when `once=True`, by claiming the message in their own transaction
(`outbox_claim`), which makes their database effects exactly once.

See docs/architecture.md, "Side effects".
"""

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from celery import Task, current_app
from django.db import connection, transaction
from django.utils import timezone

from tenants.models import OutboxMessage

logger = logging.getLogger(__name__)

# A message not marked sent this long after it was written is the sweep's (the on-commit relay
# had its chance); later attempts back off, doubling up to RELAY_BACKOFF_MAX.
RELAY_AFTER = timedelta(seconds=60)
RELAY_BACKOFF_MAX = timedelta(hours=1)
RELAY_BATCH = 500
# Sent messages are kept this long (the admin shows them), then deleted by the sweep.
KEEP_SENT = timedelta(days=7)


def outbox_enqueue(task: Task, kwargs: dict[str, Any], *, once: bool = False) -> OutboxMessage:
    """Run `task(**kwargs)` in a worker after the current transaction commits, at least once.

    With `once=True` the task also receives `outbox_id` and must pass it to `outbox_claim` in
    the transaction that makes its effect: a second delivery then does nothing.
    """
    now = timezone.now()
    message = OutboxMessage.objects.create(
        task=task.name, kwargs=kwargs, once=once, created_at=now, next_attempt_at=now + RELAY_AFTER
    )
    transaction.on_commit(lambda: _relay([message]))
    return message


def outbox_claim(outbox_id: int) -> bool:
    """In the receiver's transaction: True the first time the message's effect is made.

    The conditional UPDATE locks the message's row, so a concurrent second delivery waits for
    the first to commit (then finds it handled) or roll back (then makes the effect itself).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_claim() must run in the transaction that makes the effect.")
    claimed = OutboxMessage.objects.filter(pk=outbox_id, handled_at__isnull=True).update(
        handled_at=timezone.now()
    )
    return claimed == 1


def outbox_relay_due(*, now: Any = None) -> int:
    """Send the messages the on-commit relay could not (broker down, process gone); returns
    how many were handed to the broker. Also forgets sent messages older than KEEP_SENT."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(sent_at__isnull=True, next_attempt_at__lte=now)
            .order_by("next_attempt_at")[:RELAY_BATCH]
        )
        for message in due:
            # Claim before sending: a second sweep skips these until the backoff has passed.
            message.attempts += 1
            message.next_attempt_at = now + min(
                RELAY_AFTER * 2**message.attempts, RELAY_BACKOFF_MAX
            )
        OutboxMessage.objects.bulk_update(due, ["attempts", "next_attempt_at"])
    sent = _relay(due)
    OutboxMessage.objects.filter(sent_at__lt=now - KEEP_SENT).delete()
    return sent


def _relay(messages: Iterable[OutboxMessage]) -> int:
    """Hand each message to the broker; mark the ones it took. A broker error is logged, the
    message stays for the sweep. (With CELERY_TASK_ALWAYS_EAGER the task runs here.)"""
    sent: list[int] = []
    for message in messages:
        kwargs = dict(message.kwargs)
        if message.once:
            kwargs["outbox_id"] = message.pk
        try:
            # retry=False: a request must not wait on a broker that is down; the sweep retries.
            _task(message.task).apply_async(kwargs=kwargs, retry=False)
        except Exception:
            if current_app.conf.task_always_eager and current_app.conf.task_eager_propagates:
                raise
            logger.warning("outbox: %s (message %s) left for the sweep", message.task, message.pk)
            continue
        sent.append(message.pk)
    if sent:
        OutboxMessage.objects.filter(pk__in=sent).update(sent_at=timezone.now())
    return len(sent)


def _task(name: str) -> Task:
    """The registered task `name`; in a process that has not imported every app's tasks
    module yet (a web process, the admin), Celery's autodiscovery is run first."""
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[name]
