"""Migration 0009 (existing data): every plan gets a price in its own currency, and every old,
unlinked subscription bills in its plan's currency; they stay unlinked (renewing as before)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing import models as billing_models
from tenants.services import tenant_create

BEFORE = [("billing", "0008_subscriptions_collect")]
AFTER = [("billing", "0009_plan_prices_from_plans")]


def _migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor


@pytest.mark.django_db(transaction=True)
def test_plans_get_their_price_and_old_subscriptions_their_plans_currency() -> None:
    tenant = tenant_create(name="Old customer")
    apps = _migrate(BEFORE).loader.project_state(BEFORE).apps
    Plan = apps.get_model("billing", "Plan")
    Subscription = apps.get_model("billing", "Subscription")
    euro = Plan.objects.create(
        slug="pro-eu", name="Pro EU", price_minor=7_500, currency="EUR", included_credits=750
    )
    Plan.objects.create(slug="starter", name="Starter", price_minor=2_900, included_credits=250)
    when = datetime(2026, 1, 10, tzinfo=UTC)
    Subscription.objects.create(
        tenant_id=tenant.pk,
        plan=euro,
        anchor=when,
        current_period_start=when,
        current_period_end=datetime(2026, 2, 10, tzinfo=UTC),
    )

    _migrate(AFTER)
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes("billing"))  # back to now

    assert sorted(
        billing_models.PlanPrice.objects.values_list(
            "plan__slug", "currency", "base_minor", "per_seat_minor"
        )
    ) == [("pro-eu", "EUR", 7_500, 0), ("starter", "USD", 2_900, 0)]
    sub = billing_models.Subscription.objects.get(tenant=tenant)
    assert (sub.currency, sub.gateway, sub.status, sub.seats) == ("EUR", "", "active", 1)
    assert sub.plan.allowance(sub.seats) == Decimal("750")
