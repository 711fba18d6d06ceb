"""Plan fit on seeded rollup rows over three complete billing periods (Jan, Feb, Mar 2026;
now is Apr 15): who moves up, who moves down, who stays, and the money either way."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from billing.models import CreditPack, Plan, PlanPrice, Subscription, TopUp
from insights.plan_fit import plan_fit_list
from metering.models import RollupWatermark, UsageDay, UsageRefusalDay
from tenants.models import Tenant

pytestmark = pytest.mark.django_db
D = Decimal
NOW = datetime(2026, 4, 15, 12, tzinfo=UTC)
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


def _subscribe(tenant: Tenant, plan: Plan, currency: str = "USD") -> Subscription:
    return Subscription.objects.create(
        tenant=tenant,
        plan=plan,
        currency=currency,
        anchor=ANCHOR,
        current_period_start=datetime(2026, 4, 1, tzinfo=UTC),
        current_period_end=datetime(2026, 5, 1, tzinfo=UTC),
    )


def _used(tenant: Tenant, day: date, credits: str) -> None:
    UsageDay.objects.create(
        tenant=tenant, day=day, action="chat", cogs_currency="USD", events=1, credits=D(credits)
    )


def _refused(tenant: Tenant, day: date, reason: str, count: int = 1) -> None:
    UsageRefusalDay.objects.create(tenant=tenant, day=day, reason=reason, count=count)


@pytest.fixture
def seeded(tenant: Tenant, other_tenant: Tenant) -> dict[str, Tenant]:
    """Starter (1,000 credits, 29 USD / 27 EUR), Pro (5,000, 99 USD / 90 EUR), Scale (20,000,
    299 USD). Acme on Starter ran out in January, bought a top-up in February: up to Pro.
    Globex, on Pro in EUR, used 1,000 and 1,666 credits in January and February (under a third
    of 5,000 is under 1,666.67) and 4,000 in March: down to Starter. Initech on Starter hit the
    soft cap once, on March 31 (one period only): stays."""
    starter = Plan.objects.create(
        slug="starter", name="Starter", price_minor=2900, included_credits=1000
    )
    pro = Plan.objects.create(slug="pro", name="Pro", price_minor=9900, included_credits=5000)
    Plan.objects.create(slug="scale", name="Scale", price_minor=29900, included_credits=20000)
    PlanPrice.objects.create(plan=starter, currency="EUR", base_minor=2700)
    PlanPrice.objects.create(plan=pro, currency="EUR", base_minor=9000)
    initech = Tenant.objects.create(name="Initech", slug="initech")
    _subscribe(tenant, starter)
    _subscribe(other_tenant, pro, currency="EUR")
    _subscribe(initech, starter)
    RollupWatermark.objects.create(name="usage_events")  # refusals recorded from now on
    RollupWatermark.objects.filter(name="usage_events").update(
        created_at=datetime(2025, 12, 20, tzinfo=UTC)
    )
    _refused(tenant, date(2026, 1, 10), "insufficient_credits", 3)
    pack = CreditPack.objects.create(slug="p", name="P", credits=500, price_minor=6500)
    TopUp.objects.create(
        tenant=tenant,
        pack=pack,
        credits=D(500),
        amount_minor=6500,
        currency="USD",
        status=TopUp.Status.SUCCEEDED,
        gateway="fake",
        idempotency_key="t1",
        created_at=datetime(2026, 2, 3, tzinfo=UTC),
        completed_at=datetime(2026, 2, 3, tzinfo=UTC),
    )
    _refused(tenant, date(2026, 4, 2), "insufficient_credits")  # the current period: not yet
    _used(tenant, date(2026, 3, 3), "990")
    _used(other_tenant, date(2026, 1, 5), "1000")
    _used(other_tenant, date(2026, 2, 28), "1666")
    _used(other_tenant, date(2026, 3, 1), "4000")
    _refused(initech, date(2026, 3, 31), "soft_cap_reached", 2)
    _used(initech, date(2026, 1, 9), "200")  # under a third once only: stays
    _used(initech, date(2026, 2, 9), "900")
    _used(initech, date(2026, 3, 9), "900")
    return {"acme": tenant, "globex": other_tenant, "initech": initech}


def test_plan_fit_classifies_three_periods(seeded: dict[str, Tenant]) -> None:
    fits = {f.tenant.name: f for f in plan_fit_list(now=NOW)}

    acme = fits["Acme Agents"]
    assert [(p.start.date(), p.ran_out, p.top_ups, p.soft_cap) for p in acme.periods] == [
        (date(2026, 1, 1), 3, 0, 0),
        (date(2026, 2, 1), 0, 1, 0),
        (date(2026, 3, 1), 0, 0, 0),
    ]
    assert (acme.suggestion, acme.suggested.name if acme.suggested else None) == ("up", "Pro")
    assert (acme.price_minor, acme.suggested_price_minor, acme.difference_minor) == (
        2900,
        9900,
        7000,
    )
    assert acme.top_up_minor == 6500
    globex = fits["Globex Bots"]
    assert [p.used for p in globex.periods] == [D(1000), D(1666), D(4000)]
    assert (globex.suggestion, globex.suggested.name if globex.suggested else None) == (
        "down",
        "Starter",
    )
    assert (globex.currency, globex.price_minor, globex.difference_minor) == ("EUR", 9000, -6300)
    initech = fits["Initech"]
    assert [p.soft_cap for p in initech.periods] == [0, 0, 2]
    assert (initech.suggestion, initech.suggested) == ("", None)


def test_the_page_says_since_when_refusals_are_recorded(seeded: dict[str, Tenant]) -> None:
    client = Client()
    client.force_login(User.objects.create_user("vendor", is_staff=True))

    with time_machine.travel(NOW, tick=False):
        assert timezone.now() == NOW
        response = client.get("/console/plan-fit/")

    assert response.status_code == 200
    assert [f.tenant.name for f in response.context["up"]] == ["Acme Agents"]
    assert [f.tenant.name for f in response.context["down"]] == ["Globex Bots"]
    assert b"recorded since 2025-12-20 00:00 UTC" in response.content
    assert b"+70.00 USD" in response.content
    assert "\u221263.00 EUR".encode() in response.content  # a minus sign
