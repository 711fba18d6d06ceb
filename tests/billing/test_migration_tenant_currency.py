"""Migration 0015 (existing data): every existing tenant gets the currency of its plan (its
subscription's, a live one before one that ended), else of its contract, else of its paid
top-up; a tenant with none of them has none stored yet (the vendor's default applies)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing import models as billing_models
from tenants.services import tenant_create

BEFORE = [("billing", "0014_webhook_attempt_response")]
AFTER = [("billing", "0015_tenant_billing_currency")]
WHEN = datetime(2026, 1, 10, tzinfo=UTC)


def _migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor


@pytest.mark.django_db(transaction=True)
def test_existing_tenants_get_the_currency_of_their_plan() -> None:
    on_plan = tenant_create(name="On a euro plan")
    ended_then_live = tenant_create(name="Ended in USD, now in GBP")
    on_contract = tenant_create(name="On a contract")
    nothing = tenant_create(name="Nothing bought")
    apps = _migrate(BEFORE).loader.project_state(BEFORE).apps
    Plan = apps.get_model("billing", "Plan")
    Subscription = apps.get_model("billing", "Subscription")
    Contract = apps.get_model("billing", "Contract")
    RateCard = apps.get_model("ratecards", "RateCard")
    plan = Plan.objects.create(
        slug="pro-eu", name="Pro EU", price_minor=7_500, currency="EUR", included_credits=750
    )
    dates = {"anchor": WHEN, "current_period_start": WHEN, "current_period_end": WHEN}
    Subscription.objects.create(tenant_id=on_plan.pk, plan=plan, currency="EUR", **dates)
    Subscription.objects.create(
        tenant_id=ended_then_live.pk, plan=plan, currency="GBP", status="active", **dates
    )
    Subscription.objects.create(
        tenant_id=ended_then_live.pk, plan=plan, currency="USD", status="canceled", **dates
    )
    Contract.objects.create(
        tenant_id=on_contract.pk,
        name="Enterprise",
        price_per_1000_minor=800,
        currency="CHF",
        committed_credits=1_000,
        start_at=WHEN,
        end_at=datetime(2027, 1, 10, tzinfo=UTC),
        rate_card=RateCard.objects.create(name="Card", slug="card"),
    )

    _migrate(AFTER)
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes("billing"))  # back to now

    assert dict(billing_models.TenantBilling.objects.values_list("tenant_id", "currency")) == {
        on_plan.pk: "EUR",
        ended_then_live.pk: "GBP",
        on_contract.pk: "CHF",
    }
    assert not billing_models.TenantBilling.objects.filter(tenant=nothing).exists()
