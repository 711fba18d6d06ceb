"""Reconciliation on a seeded mix, to the cent: a subscription and a top-up paid in USD, usage
spent across both, a usage refund, half the top-up refunded (credits taken back), the period's
unspent credits expired; a EUR customer beside it, never summed with USD. Then a grant nobody
paid for and a rollup left behind: exit 1 and an ERROR log."""

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import CreditPack, Plan, PlanPrice, TopUp
from billing.services import fake_checkout_confirm, topup_create
from billing.services.subscriptions import subscription_create
from insights.models import ReconciliationRun
from insights.reconcile import reconcile
from insights.rollup import insights_rollup_update
from ledger.models import CreditBucket
from ledger.selectors import transaction_get
from ledger.services import ledger_expire_due, ledger_grant, ledger_grant_revoke, ledger_reverse
from metering.services import UsageInput, usage_event_record
from ratecards.services import ratecard_seed_example
from tenants.models import OutboxMessage, Tenant
from tests.insights.conftest import StaffLogin

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)


def _spend(tenant: Tenant, key: str, credits: str) -> None:
    usage_event_record(
        tenant=tenant, data=UsageInput(idempotency_key=key, action="chat", quantity=D(credits))
    )


def _pack(slug: str, credits: str, price_minor: int, currency: str) -> CreditPack:
    return CreditPack.objects.create(
        slug=slug, name=slug, credits=D(credits), price_minor=price_minor, currency=currency
    )


@pytest.fixture
def mix(tenant: Tenant, other_tenant: Tenant) -> Iterator[Tenant]:
    with time_machine.travel("2026-01-15 12:00:00+00:00", tick=False) as clock:
        ratecard_seed_example()
        pro = Plan.objects.create(
            slug="pro", name="Pro", price_minor=7_900, included_credits=D("750")
        )
        PlanPrice.objects.create(plan=pro, currency="USD", base_minor=7_900)
        PlanPrice.objects.create(plan=pro, currency="EUR", base_minor=7_200)
        # USD: 750 included credits for $79.00 (until Feb 15), 500 bought for $65.00.
        subscription_create(tenant=tenant, plan=pro)
        top_up = fake_checkout_confirm(
            top_up=topup_create(tenant=tenant, pack=_pack("p500", "500", 6_500, "USD"))
        )
        # 800 spent: the 750 included (they expire first), then 50 of the pack.
        _spend(tenant, "e1", "800")
        # 100 refunded, last drawn first: 50 back to the pack, 50 to the subscription's.
        debit = transaction_get(tenant=tenant, idempotency_key="usage:e1")
        assert debit is not None
        ledger_reverse(tenant=tenant, debit=debit, idempotency_key="r1", amount=D("100"))
        # Half the pack's price refunded: its 250 credits taken back (what billing's refund
        # service does; written here so the test does not depend on the gateway's refund).
        ledger_grant_revoke(
            tenant=tenant,
            external_reference=f"topup:{top_up.pk}",
            credits=D("250"),
            idempotency_key="takeback",
        )
        TopUp.objects.filter(pk=top_up.pk).update(refunded_minor=3_250, credits_taken_back=D("250"))
        # EUR: the plan's 750 credits for EUR 72.00 (9.6 cents each), 300 spent.
        subscription_create(tenant=other_tenant, plan=pro, currency="EUR")
        _spend(other_tenant, "x1", "300")
        # The periods end with 50 and 450 included credits unspent: they break.
        clock.move_to("2026-02-16 00:00:00+00:00")
        assert ledger_expire_due() == 2
        insights_rollup_update()
        yield tenant


def test_the_seeded_mix_reconciles_to_the_cent(mix: Tenant) -> None:
    result = reconcile()

    assert result.problems == []
    eur, usd = result.currencies
    assert (usd.currency, usd.received, usd.refunded) == ("USD", D("14400"), D("3250"))
    # 750 at 7900/750 = 10.53333333 a credit, 50 at 13: spent 7,899.9999975 + 650, refunded
    # 650 + 526.6666665; the 50 left of the included credits break; 250 of the pack are left.
    assert usd.revenue == D("7373.33333100")
    assert usd.breakage == D("526.66666650")
    assert usd.unspent == D("3250.00000000")
    assert usd.refunded_spent == D("0E-8")
    assert usd.left == D("11150")
    assert usd.right == D("11149.99999750")
    assert usd.difference == 0
    assert (eur.currency, eur.received, eur.revenue, eur.breakage, eur.unspent) == (
        "EUR",
        D("7200"),
        D("2880.00000000"),
        D("4320.00000000"),
        D("0"),
    )
    assert eur.difference == 0


def test_a_grant_nobody_paid_for_and_a_stale_rollup_exit_1(
    mix: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    with time_machine.travel("2026-02-16 01:00:00+00:00", tick=False):
        ledger_grant(
            tenant=mix,
            credits=100,
            policy=CreditBucket.Policy.PERMANENT,
            source=CreditBucket.Source.TOPUP,
            external_reference="stray",
            price_minor=500,
        )
        _spend(mix, "e2", "10")

    with (
        caplog.at_level(logging.ERROR, logger="insights.reconcile"),
        pytest.raises(CommandError, match="difference"),
    ):
        call_command("reconcile", "--no-update")

    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert (
        "reconciliation: USD: received less refunds 11150.00000000 minor units, the ledger "
        "accounts for 11649.99999750 (difference -500)"
    ) in messages
    assert (
        "reconciliation: rollup grant in USD: ledger 1350.0000 credits / 14899.99999750 minor, "
        "rollup 1250.0000 / 14399.99999750"
    ) in messages
    assert (
        "reconciliation: margin rollup of tenant "
        f"{mix.pk}: ledger 710.0000 credits spent on usage, rollup 700.0000"
    ) in messages


def test_the_hourly_task_reconciles_and_says_so(mix: Tenant, settings: Any) -> None:
    from config.celery_app import app

    assert settings.CELERY_BEAT_SCHEDULE["insights.reconcile"] == {
        "task": "insights.reconcile",
        "schedule": 3600.0,
    }
    assert settings.CELERY_BEAT_SCHEDULE["insights.rollup_update"]["schedule"] == 60.0
    assert app.tasks["insights.reconcile"].apply().get() is True
    assert app.tasks["insights.rollup_update"].apply().get() == {
        "margin_events": 0,
        "ledger_entries": 0,
    }


def test_each_run_is_stored_and_the_page_shows_the_last(
    mix: Tenant, staff_login: StaffLogin
) -> None:
    from config.celery_app import app

    viewer, _ = staff_login()
    assert b"No run yet" in viewer.get("/console/reconciliation/").content

    assert app.tasks["insights.reconcile"].apply().get() is True
    with time_machine.travel("2026-02-16 01:00:00+00:00", tick=False):
        _spend(mix, "e3", "10")  # the rollup is left behind: --no-update
        with pytest.raises(CommandError, match="2 difference"):
            call_command("reconcile", "--no-update")

    hourly, command = ReconciliationRun.objects.order_by("id")
    assert (hourly.trigger, hourly.status, hourly.ok, hourly.problems) == (
        "schedule",
        "done",
        True,
        [],
    )
    assert hourly.duration_ms is not None
    assert hourly.started_at == hourly.requested_at
    assert hourly.finished_at is not None
    usd = next(c for c in hourly.currencies if c["currency"] == "USD")
    assert (D(usd["received"]), D(usd["revenue"]), D(usd["breakage"])) == (
        D("14400"),
        D("7373.33333100"),
        D("526.66666650"),
    )
    assert (command.trigger, command.status, command.ok) == ("command", "done", False)
    assert command.problems == [
        "rollup spend in USD: ledger -810.0000 credits / -8679.99999750 minor, rollup "
        "-800.0000 / -8549.99999750",
        f"margin rollup of tenant {mix.pk}: ledger 710.0000 credits spent on usage, "
        "rollup 700.0000",
    ]
    assert command.differences == 2
    with CaptureQueriesContext(connection) as queries:
        page = viewer.get("/console/reconciliation/")
    assert page.context["run"] == command
    assert [b.difference for b in page.context["currencies"]] == [0, 0]
    assert b"2 differences</strong>" in page.content
    assert b"ledger 710.0000 credits spent on usage" in page.content
    assert b"manage.py reconcile" in page.content
    assert not [q for q in queries.captured_queries if "ledger_" in q["sql"]]  # nothing summed
    assert b"Run it now" not in page.content  # no insights.add_reconciliationrun
    assert viewer.post("/console/reconciliation/").status_code == 403
    assert ReconciliationRun.objects.count() == 2


def test_a_staff_user_asks_for_a_run_through_the_task(mix: Tenant, staff_login: StaffLogin) -> None:
    client, user = staff_login("add_reconciliationrun")
    assert b"Run it now" in client.get("/console/reconciliation/").content

    response = client.post("/console/reconciliation/")

    assert response.status_code == 302
    assert response["Location"] == "/console/reconciliation/"
    (message,) = OutboxMessage.objects.filter(task="insights.reconcile")
    (run,) = ReconciliationRun.objects.all()
    assert message.kwargs == {"run_id": run.pk}
    # The test settings run tasks eagerly: the outbox handed it over on commit.
    assert (run.trigger, run.requested_by, run.status, run.ok) == ("staff", user, "done", True)
    (entry,) = LogEntry.objects.all()
    assert (entry.user, entry.object_id, entry.change_message) == (
        user,
        str(run.pk),
        "asked for a reconciliation run",
    )
    page = client.get("/console/reconciliation/")
    assert page.context["run"] == run
    assert f"started {run.started_at:%Y-%m-%d %H:%M:%S} UTC (Asked for by staff, ".encode() in (
        page.content
    )
    # A second copy of its message leaves the run done alone.
    assert app_reconcile(run.pk) is True
    assert ReconciliationRun.objects.get().finished_at == run.finished_at


def app_reconcile(run_id: int) -> bool:
    from config.celery_app import app

    return bool(app.tasks["insights.reconcile"].apply(kwargs={"run_id": run_id}).get())
