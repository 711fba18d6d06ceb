"""The transactional outbox: a side effect of a change is a row written in the change's own
transaction, so it is never lost and never made for a change that rolled back.

`outbox_enqueue(task, kwargs)` writes an `OutboxMessage`. When the transaction commits, the
relay hands the broker one `tenants.outbox_run` task naming the message; a worker runs the
message's task in it and marks the message handled when it returns. A message is done only
when handled: `outbox_relay_due`, a periodic task, sends again what is not (the broker was
down when it was written, a worker died running it, the task failed), backing off per message
and giving up after `MAX_ATTEMPTS` (the admin lists those). So each side effect runs at least
once, and its receiver is idempotent: by nature (an evaluation that reads the current state),
or, when `once=True`, by claiming the message in its own transaction (`outbox_claim`), which
makes its database effect exactly once.

See docs/architecture.md, "Side effects".
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from celery import Task, current_app
from django.db import connection, transaction
from django.utils import timezone

from tenants.models import OutboxMessage

logger = logging.getLogger(__name__)

# A message written this long ago and still not handled is sent again by the sweep: the first
# send had its chance (the on-commit relay, then a worker running it). Each later attempt waits
# twice as long, up to RELAY_BACKOFF_MAX; after MAX_ATTEMPTS sends the message is given up.
RELAY_AFTER = timedelta(minutes=2)
RELAY_BACKOFF_MAX = timedelta(hours=1)
MAX_ATTEMPTS = 12
RELAY_BATCH = 500
# Handled messages are kept this long (the admin shows them), then deleted by the sweep.
KEEP_HANDLED = timedelta(days=7)
RUN_TASK = "tenants.outbox_run"


def outbox_enqueue(
    task: Task | str, kwargs: dict[str, Any], *, once: bool = False
) -> OutboxMessage:
    """Run `task(**kwargs)` in a worker after the current transaction commits, at least once.

    `task` is a Celery task or its registered name: a service names its task (a constant of its
    app) so that it never imports the tasks module, which imports the services.

    With `once=True` the task also receives `outbox_id` and must pass it to `outbox_claim` in
    the transaction that makes its effect: a second run then does nothing.
    """
    now = timezone.now()
    message = OutboxMessage.objects.create(
        task=task if isinstance(task, str) else task.name,
        kwargs=kwargs,
        once=once,
        created_at=now,
        next_attempt_at=now + RELAY_AFTER,
    )
    transaction.on_commit(lambda: _relay([message]))
    return message


def outbox_relay_on_commit(message_id: int, task: str) -> None:
    """Relay, after the current transaction commits, a message that SQL wrote (the ledger's
    debit writes its own; ledger/sql/debit_v4.sql)."""
    message = OutboxMessage(pk=message_id, task=task)
    transaction.on_commit(lambda: _relay([message]))


def outbox_claim(outbox_id: int) -> bool:
    """In the receiver's transaction: True the first time the message's effect is made.

    The conditional UPDATE locks the message's row until the transaction ends; a second copy
    running at the same time finds the row locked and returns False at once (it does not wait
    behind, say, a slow mail server), and one running later finds it handled. If the first
    copy's transaction rolls back, the message is not handled and the sweep sends it again.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_claim() must run in the transaction that makes the effect.")
    free = OutboxMessage.objects.select_for_update(skip_locked=True).filter(
        pk=outbox_id, handled_at__isnull=True
    )
    return OutboxMessage.objects.filter(pk__in=free).update(handled_at=timezone.now()) == 1


def outbox_run(message_id: int) -> None:
    """The worker's side: run the message's task here, then mark it handled (a `once` task
    marks it itself, with its effect). A message already handled is not run again."""
    message = OutboxMessage.objects.filter(pk=message_id, handled_at__isnull=True).first()
    if message is None:
        return
    kwargs = dict(message.kwargs)
    if message.once:
        kwargs["outbox_id"] = message.pk
    task_by_name(message.task).run(**kwargs)
    if not message.once:
        OutboxMessage.objects.filter(pk=message.pk, handled_at__isnull=True).update(
            handled_at=timezone.now()
        )


def outbox_relay_due(*, now: datetime | None = None) -> int:
    """Send again what is not handled and due (see the module docstring); returns how many
    were handed to the broker. Also forgets handled messages older than KEEP_HANDLED."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(handled_at__isnull=True, attempts__lt=MAX_ATTEMPTS, next_attempt_at__lte=now)
            .order_by("next_attempt_at")[:RELAY_BATCH]
        )
        for message in due:
            # Claimed by moving the next attempt on: a second sweep skips these meanwhile.
            message.attempts += 1
            backoff = min(RELAY_AFTER * 2**message.attempts, RELAY_BACKOFF_MAX)
            message.next_attempt_at = now + backoff
        OutboxMessage.objects.bulk_update(due, ["attempts", "next_attempt_at"])
    sent = _relay(due)
    OutboxMessage.objects.filter(handled_at__lt=now - KEEP_HANDLED).delete()
    return sent


def _relay(messages: Iterable[OutboxMessage]) -> int:
    """Hand each message to the broker and note when; a broker error is logged and the
    message stays for the sweep. (With CELERY_TASK_ALWAYS_EAGER the task runs here.)"""
    sent: list[int] = []
    for message in messages:
        try:
            # retry=False: a request must not wait on a broker that is down; the sweep retries.
            task_by_name(RUN_TASK).apply_async(args=(message.pk,), retry=False)
        except Exception:
            if current_app.conf.task_always_eager and current_app.conf.task_eager_propagates:
                raise
            logger.warning("outbox: %s (message %s) left for the sweep", message.task, message.pk)
            continue
        sent.append(message.pk)
    if sent:
        OutboxMessage.objects.filter(pk__in=sent, sent_at__isnull=True).update(
            sent_at=timezone.now()
        )
    return len(sent)


def task_by_name(name: str) -> Task:
    """The registered task `name`; in a process that has not imported every app's tasks
    module yet (a web process, the admin), Celery's autodiscovery is run first."""
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[name]
