"""Low-balance alerts: once per crossing of 20% and 10% of what the tenant was last topped up
to, again after a top-up and a new fall (tests/billing/test_alert_base.py: the base itself)."""

from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from billing.models import AlertSettings, AlertState, WebhookDelivery
from billing.services import webhook_endpoint_create
from ledger.models import CreditBucket
from ledger.selectors import credit_account_get
from ledger.services import (
    credit_account_update,
    ledger_debit,
    ledger_expire_due,
    ledger_grant,
)
from metering.models import WorkflowSettings
from tenants.models import OutboxMessage, Tenant
from tests.billing.conftest import grant

pytestmark = pytest.mark.django_db(transaction=True)


def spend(tenant: Tenant, amount: str, key: str) -> None:
    ledger_debit(tenant=tenant, amount=Decimal(amount), idempotency_key=key)


def subjects() -> list[str]:
    return [m.subject.removeprefix("[Creditline] ") for m in mail.outbox]


def events(tenant: Tenant) -> list[tuple[str, object]]:
    return [
        (d.event_type, d.payload["data"].get("threshold_percent"))
        for d in WebhookDelivery.objects.filter(tenant=tenant).order_by("id")
    ]


def test_alerts_fire_once_per_crossing_and_re_arm_after_a_top_up(
    tenant: Tenant, owner: object
) -> None:
    webhook_endpoint_create(
        tenant=tenant,
        url="http://127.0.0.1:9/hook",
        event_types=["balance.low", "balance.exhausted"],
    )
    grant(tenant, 1000, "promo")
    spend(tenant, "750", "d1")  # 25% left
    assert subjects() == []
    spend(tenant, "60", "d2")  # 19%: under 20
    spend(tenant, "10", "d3")  # 18%: still under 20, nothing new
    assert subjects() == ["Under 20% of your credits left"]
    spend(tenant, "85", "d4")  # 9.5%: under 10
    spend(tenant, "5", "d5")
    assert subjects() == ["Under 20% of your credits left", "Under 10% of your credits left"]
    assert mail.outbox[0].to == ["owner@acme.test"]
    assert mail.outbox[0].body == (
        "Acme Agents has 190.0000 of 1000.0000 credits left, under 20%. "
        "Top up or turn on auto top-up to keep your agents running."
    )

    grant(tenant, 1000, "top-up")  # topped up to 1090: both thresholds re-armed
    assert set(AlertState.objects.filter(tenant=tenant).values_list("threshold", "state")) == {
        (20, "armed"),
        (10, "armed"),
        (0, "armed"),
    }
    spend(tenant, "700", "d6")  # 390 of 1090 = 35.8%
    spend(tenant, "200", "d7")  # 190 = 17.4%: under 20
    spend(tenant, "190", "d8")  # 0: under 10, exhausted
    assert subjects() == [
        "Under 20% of your credits left",
        "Under 10% of your credits left",
        "Under 20% of your credits left",
        "Under 10% of your credits left",
        "Your credits are used up",
    ]
    assert events(tenant) == [
        ("balance.low", 20),
        ("balance.low", 10),
        ("balance.low", 20),
        ("balance.low", 10),
        ("balance.exhausted", None),
    ]


def test_one_big_debit_crosses_both_thresholds_at_once(tenant: Tenant, owner: object) -> None:
    grant(tenant, 100, "promo")
    spend(tenant, "95", "d1")
    assert subjects() == ["Under 20% of your credits left", "Under 10% of your credits left"]


def test_tenant_thresholds_come_from_billings_alert_settings(
    tenant: Tenant, owner: object, api_client: APIClient
) -> None:
    # The old route still takes the soft cap for one release (deprecated): metering keeps it.
    response = api_client.put(
        "/api/v1/alert-settings",
        {"alert_thresholds": [5, 50, 5], "soft_cap": "30"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {
        "alert_thresholds": [50, 5],
        "soft_cap": "30.0000",
        "soft_cap_effective": "30.0000",
    }
    assert AlertSettings.objects.get(tenant=tenant).thresholds == [50, 5]
    assert WorkflowSettings.objects.get(tenant=tenant).soft_cap == Decimal("30")
    grant(tenant, 100, "promo")
    spend(tenant, "60", "d1")
    assert subjects() == ["Under 50% of your credits left"]


def test_the_old_route_clears_the_soft_cap_with_null_and_leaves_what_it_is_not_sent(
    tenant: Tenant, api_client: APIClient
) -> None:
    grant(tenant, 400, "promo")
    api_client.put("/api/v1/alert-settings", {"soft_cap": "30"}, format="json")

    cleared = api_client.put("/api/v1/alert-settings", {"soft_cap": None}, format="json")
    only_thresholds = api_client.put(
        "/api/v1/alert-settings", {"alert_thresholds": [25]}, format="json"
    )

    # The default: 10% of 400, then the lowest threshold (25%) of it.
    assert cleared.json() == {
        "alert_thresholds": [20, 10],
        "soft_cap": None,
        "soft_cap_effective": "40.0000",
    }
    assert only_thresholds.json() == {
        "alert_thresholds": [25],
        "soft_cap": None,
        "soft_cap_effective": "100.0000",
    }


def test_most_debits_above_the_watch_level_wake_nothing(tenant: Tenant) -> None:
    grant(tenant, 1000, "promo")
    assert credit_account_get(tenant=tenant).watch_level == Decimal("200.0000")


def test_a_debit_above_the_watch_level_costs_billing_no_query(tenant: Tenant) -> None:
    grant(tenant, 1000, "promo")

    with CaptureQueriesContext(connection) as queries:
        spend(tenant, "10", "d1")

    # The ledger's one call, its own transaction: no crossing of the watch level (200), so
    # the function wrote no outbox message, and billing's receiver had nothing to decide.
    assert [q["sql"].split("(")[0] for q in queries.captured_queries] == [
        "SELECT * FROM ledger_debit_batch"
    ]
    assert subjects() == []


def test_expired_credits_are_announced(tenant: Tenant, owner: object) -> None:
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    with time_machine.travel(timezone.now(), tick=False) as clock:
        ledger_grant(
            tenant=tenant,
            credits=Decimal(40),
            policy=CreditBucket.Policy.MONTHLY_RESET,
            source=CreditBucket.Source.SUBSCRIPTION,
            external_reference="sub:x:0",
            expires_at=timezone.now() + timedelta(days=1),
        )
        grant(tenant, 200, "promo")
        clock.shift(timedelta(days=2))
        assert ledger_expire_due() == 1
    assert "40.0000 credits expired" in subjects()


def test_debits_under_the_watch_level_and_into_an_overdraft_write_one_outbox_row_per_crossing(
    tenant: Tenant, owner: object
) -> None:
    credit_account_update(tenant=tenant, overdraft_limit=Decimal(500))
    grant(tenant, 1000, "promo")  # watch level 200 (20% armed)
    evaluations = OutboxMessage.objects.filter(task="ledger.watch_crossed")
    before = evaluations.count()

    spend(tenant, "700", "d1")  # 300: above 200, nothing
    spend(tenant, "150", "d2")  # 150: crossed 200
    spend(tenant, "10", "d3")  # 140: still under 200, not a crossing (the level is now 100)
    spend(tenant, "100", "d4")  # 40: crossed 100
    spend(tenant, "40", "d5")  # 0: exhausted
    for n in range(10):
        spend(tenant, "5", f"od{n}")  # -5 ... -50: in the overdraft, one crossing of 0 at most

    assert evaluations.count() - before == 4
    assert subjects() == [
        "Under 20% of your credits left",
        "Under 10% of your credits left",
        "Your credits are used up",
    ]
