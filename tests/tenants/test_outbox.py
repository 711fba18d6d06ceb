"""The outbox (tenants/outbox.py) and leases (tenants/leases.py): a side effect goes or stays
with its change, is sent at least once, and a once-receiver makes its effect once."""

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery import shared_task
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from billing.models import WebhookDelivery
from billing.services import webhook_endpoint_create
from billing.tasks import alert_email_send_task, webhook_fanout_task
from config.celery_app import app
from ledger.tasks import verify
from tenants.events import publish
from tenants.leases import lease
from tenants.models import Lease, OutboxMessage, Tenant
from tenants.outbox import MAX_ATTEMPTS, outbox_enqueue, outbox_relay_due
from tenants.services import membership_add
from tenants.tasks import ping

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_rolled_back_change_leaves_no_side_effect(tenant: Tenant) -> None:
    def change() -> None:
        with transaction.atomic():
            outbox_enqueue(ping, {"note": "never"})
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        change()

    assert OutboxMessage.objects.count() == 0


def test_a_committed_change_hands_its_side_effect_over_and_marks_it_sent() -> None:
    with transaction.atomic():
        message = outbox_enqueue(ping, {"note": "hi"})
        assert OutboxMessage.objects.get().sent_at is None  # not before the commit

    message.refresh_from_db()
    assert (message.task, message.kwargs, message.attempts) == ("tenants.ping", {"note": "hi"}, 0)
    assert message.sent_at is not None
    assert outbox_relay_due(now=timezone.now() + timedelta(hours=1)) == 0  # nothing left


FLAKY = {"calls": 0, "fail": 0}


@shared_task(name="tests.flaky")
def flaky_task() -> None:
    """Fails as many times as FLAKY["fail"] says, then succeeds."""
    FLAKY["calls"] += 1
    if FLAKY["calls"] <= FLAKY["fail"]:
        raise ConnectionError("the mail server is away")


@pytest.fixture
def failures_swallowed() -> Iterator[None]:
    """As in a worker: a task's error is logged, not raised into the code that sent it."""
    app.conf.task_eager_propagates = False
    FLAKY.update(calls=0, fail=0)
    yield
    app.conf.task_eager_propagates = True


@pytest.mark.usefixtures("failures_swallowed")
def test_a_task_that_fails_is_run_again_by_the_sweep_until_it_succeeds() -> None:
    FLAKY["fail"] = 2
    with transaction.atomic():
        message = outbox_enqueue(flaky_task, {})
    message.refresh_from_db()
    assert (FLAKY["calls"], message.attempts, message.handled_at) == (1, 0, None)

    now = message.next_attempt_at
    assert outbox_relay_due(now=now - timedelta(seconds=1)) == 0  # not due yet
    assert outbox_relay_due(now=now) == 1  # fails again
    message.refresh_from_db()
    assert (FLAKY["calls"], message.attempts, message.handled_at) == (2, 1, None)
    assert message.next_attempt_at == now + timedelta(minutes=4)  # backing off

    assert outbox_relay_due(now=message.next_attempt_at) == 1  # and now it runs to the end
    message.refresh_from_db()
    assert (FLAKY["calls"], message.attempts) == (3, 2)
    assert message.handled_at is not None
    assert outbox_relay_due(now=now + timedelta(days=1)) == 0  # done


@pytest.mark.usefixtures("failures_swallowed")
def test_a_task_that_always_fails_is_given_up_after_max_attempts() -> None:
    FLAKY["fail"] = 1000
    with transaction.atomic():
        message = outbox_enqueue(flaky_task, {})
    later = timezone.now() + timedelta(days=30)

    sends = sum(outbox_relay_due(now=later + timedelta(days=n)) for n in range(MAX_ATTEMPTS + 3))

    message.refresh_from_db()
    assert (sends, message.attempts, message.handled_at) == (MAX_ATTEMPTS, MAX_ATTEMPTS, None)
    assert FLAKY["calls"] == 1 + MAX_ATTEMPTS


def _twice_at_once(run: Callable[[], object]) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            run()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []


def _once_message(task: Any, kwargs: dict[str, Any]) -> OutboxMessage:
    now = timezone.now()
    return OutboxMessage.objects.create(
        task=task.name, kwargs=kwargs, once=True, created_at=now, next_attempt_at=now
    )


def test_an_alert_email_is_sent_once_when_its_task_runs_twice_at_once(
    tenant: Tenant, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("owner", email="owner@acme.test")
    membership_add(tenant=tenant, user=user, role="owner")
    kwargs: dict[str, Any] = {"tenant_id": tenant.pk, "subject": "Under 20%", "body": "Top up."}
    message = _once_message(alert_email_send_task, kwargs)

    _twice_at_once(lambda: alert_email_send_task(**kwargs, outbox_id=message.pk))
    alert_email_send_task(**kwargs, outbox_id=message.pk)  # and a third time, later

    assert [(m.subject, m.to) for m in mail.outbox] == [
        ("[Creditline] Under 20%", ["owner@acme.test"])
    ]
    message.refresh_from_db()
    assert message.handled_at is not None


def test_a_webhook_fan_out_is_made_once_when_its_task_runs_twice_at_once(
    tenant: Tenant, settings: Any
) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    webhook_endpoint_create(tenant=tenant, url="http://127.0.0.1:9/a")
    webhook_endpoint_create(tenant=tenant, url="http://127.0.0.1:9/b")
    kwargs: dict[str, Any] = {
        "tenant_id": tenant.pk,
        "type": "balance.low",
        "data": {"threshold_percent": 20},
    }
    message = _once_message(webhook_fanout_task, kwargs)

    _twice_at_once(lambda: webhook_fanout_task(**kwargs, outbox_id=message.pk))

    assert sorted(
        WebhookDelivery.objects.filter(tenant=tenant).values_list("endpoint__url", flat=True)
    ) == ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]


def test_a_second_copy_of_a_leased_task_exits_at_once() -> None:
    with lease("ledger.verify", ttl=timedelta(minutes=30)) as held:
        assert held
        assert verify() == -1  # the copy the broker handed out again
    assert Lease.objects.count() == 0  # given back
    assert verify() == 0  # and the next run goes ahead


def test_a_lease_left_by_a_killed_worker_lapses_after_its_ttl() -> None:
    Lease.objects.create(
        name="ledger.verify", holder="dead", expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert verify() == 0
    Lease.objects.create(
        name="ledger.verify", holder="alive", expires_at=timezone.now() + timedelta(minutes=5)
    )
    assert verify() == -1


def test_a_fan_out_with_no_endpoint_to_send_to_is_done_too(tenant: Tenant) -> None:
    with transaction.atomic():
        publish(tenant_id=tenant.pk, type="balance.low", data={})

    message = OutboxMessage.objects.get(task="billing.webhook_fanout")
    assert message.handled_at is not None  # not sent again and again by the sweep
    assert WebhookDelivery.objects.count() == 0
