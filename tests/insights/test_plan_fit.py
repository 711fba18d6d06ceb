"""Plan fit on seeded rollup rows over three complete billing periods (Jan, Feb, Mar 2026;
now is Apr 15): who moves up, who moves down, who stays, and the money either way. Credits used
are the ledger's DebitDay rows (seeded here); the last test checks, on real events, refunds
and other ledger movements, that DebitDay holds exactly metering's UsageDay credits summed per
tenant and day, the figure plan fit used to read."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from billing.models import CreditPack, Plan, PlanPrice, Subscription, TopUp
from insights.plan_fit import plan_fit_list
from ledger.models import DebitDay, LedgerTransaction
from ledger.rollup import debit_days_update
from ledger.services import ledger_adjust, ledger_grant_revoke, ledger_reverse
from metering.models import RollupWatermark, UsageDay, UsageRefusalDay
from metering.rollup import usage_rollup_update
from metering.services import UsageInput, usage_event_record
from metering.workflows import workflow_start, workflow_step
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import fund

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
    """Credits spent that day (added to the day's DebitDay row, as the ledger's job does)."""
    row, _ = DebitDay.objects.get_or_create(tenant=tenant, day=day)
    row.credits += D(credits)
    row.save(update_fields=["credits"])


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
    scale = Plan.objects.create(
        slug="scale", name="Scale", price_minor=29900, included_credits=20000
    )
    for plan in (starter, pro, scale):  # sold in USD at the list price, as subscribing needs
        PlanPrice.objects.create(plan=plan, currency="USD", base_minor=plan.price_minor)
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


def _top_up(
    tenant: Tenant,
    key: str,
    at: datetime,
    minor: int,
    currency: str = "USD",
    status: str = TopUp.Status.SUCCEEDED,
) -> None:
    pack, _ = CreditPack.objects.get_or_create(
        slug="p", defaults={"name": "P", "credits": 500, "price_minor": 6500}
    )
    TopUp.objects.create(
        tenant=tenant,
        pack=pack,
        credits=D(500),
        amount_minor=minor,
        currency=currency,
        status=status,
        gateway="fake",
        idempotency_key=key,
        created_at=at,
        completed_at=at,
    )


def test_the_sql_sums_per_period_by_hand(tenant: Tenant, other_tenant: Tenant) -> None:
    """Anchored Jan 31 10:00, the periods are Jan 31-Feb 28, Feb 28-Mar 31, Mar 31-Apr 30
    (10:00 each): their UTC days overlap on Feb 28 and Mar 31, which count in both periods, as
    they always have; a top-up counts by its completion time, so 10:00 on Feb 28 is the second
    period's. Two debits a day, a day of refunds only, rows outside the periods, another
    tenant's rows and top-ups that did not succeed are in the data; the sums are written out
    by hand below."""
    starter = Plan.objects.create(
        slug="starter", name="Starter", price_minor=2900, included_credits=1000
    )
    Subscription.objects.create(
        tenant=tenant,
        plan=starter,
        currency="USD",
        anchor=datetime(2026, 1, 31, 10, tzinfo=UTC),
        current_period_start=datetime(2026, 4, 30, 10, tzinfo=UTC),
        current_period_end=datetime(2026, 5, 31, 10, tzinfo=UTC),
    )
    for day, credits in [
        (date(2026, 1, 30), "100"),  # before the first period
        (date(2026, 1, 31), "10.5"),
        (date(2026, 2, 28), "7"),  # both the first and the second
        (date(2026, 3, 15), "40"),
        (date(2026, 3, 16), "-5"),  # refunds only
        (date(2026, 3, 31), "1.0001"),  # both the second and the third
        (date(2026, 4, 30), "3"),
        (date(2026, 5, 1), "1000"),  # the current period
    ]:
        _used(tenant, day, credits)
    _used(tenant, date(2026, 1, 31), "2.25")  # a second debit that day
    _used(other_tenant, date(2026, 2, 10), "999")
    _refused(tenant, date(2026, 1, 30), "insufficient_credits", 9)
    _refused(tenant, date(2026, 2, 28), "insufficient_credits", 2)
    _refused(tenant, date(2026, 3, 31), "soft_cap_reached", 1)
    _refused(tenant, date(2026, 4, 30), "insufficient_credits", 4)
    _refused(other_tenant, date(2026, 3, 1), "soft_cap_reached", 5)
    _top_up(tenant, "a", datetime(2026, 2, 28, 9, 59, 59, tzinfo=UTC), 500)
    _top_up(tenant, "b", datetime(2026, 2, 28, 10, tzinfo=UTC), 1000)
    _top_up(tenant, "c", datetime(2026, 3, 3, tzinfo=UTC), 700, currency="EUR")
    _top_up(tenant, "d", datetime(2026, 3, 4, tzinfo=UTC), 800, status=TopUp.Status.FAILED)
    _top_up(other_tenant, "e", datetime(2026, 3, 5, tzinfo=UTC), 900)

    (fit,) = plan_fit_list(now=datetime(2026, 5, 5, tzinfo=UTC))

    assert [
        (p.start.date(), p.used, p.ran_out, p.soft_cap, p.top_ups, p.top_up_minor)
        for p in fit.periods
    ] == [
        (date(2026, 1, 31), D("19.7500"), 2, 0, 1, 500),  # 10.5 + 2.25 + 7
        (date(2026, 2, 28), D("43.0001"), 2, 1, 2, 1000),  # 7 + 40 - 5 + 1.0001; EUR apart
        (date(2026, 3, 31), D("4.0001"), 4, 1, 0, 0),  # 1.0001 + 3
    ]
    assert fit.top_up_minor == 1500
    assert (fit.suggestion, fit.suggested) == ("up", None)  # no bigger plan is sold


def test_each_list_is_paged_by_50(tenant: Tenant) -> None:
    starter = Plan.objects.create(
        slug="starter", name="Starter", price_minor=2900, included_credits=1000
    )
    Plan.objects.create(slug="pro", name="Pro", price_minor=9900, included_credits=5000)
    for n in range(51):
        customer = Tenant.objects.create(name=f"Customer {n:02}", slug=f"customer-{n}")
        _subscribe(customer, starter)
        _refused(customer, date(2026, 1, 10), "insufficient_credits")
        _refused(customer, date(2026, 2, 10), "insufficient_credits")
    client = Client()
    client.force_login(User.objects.create_user("vendor", is_staff=True))

    with time_machine.travel(NOW, tick=False):
        first = client.get("/console/plan-fit/")
        second = client.get("/console/plan-fit/?up=2")

    assert len(first.context["up"]) == 50
    assert first.context["up"][0].tenant.name == "Customer 00"
    assert b"Suggest the next plan up (51)" in first.content
    assert b"1\xe2\x80\x9350 of 51 \xc2\xb7 page 1 of 2" in first.content
    assert b'href="?up=2" rel="next"' in first.content
    assert [f.tenant.name for f in second.context["up"]] == ["Customer 50"]


def test_debit_days_hold_the_usage_rollups_credits_per_tenant_and_day(
    tenant: Tenant, other_tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    """Jan 14: Acme chats (2), researches at turbo (60) and runs a step paid from its run's
    hold (doc search x2: 6). Jan 15: 20 of the research refunded, 100 of its pack taken back
    (a refunded purchase), a -5 adjustment (corrections are not usage), one more chat; Globex
    searches once (3). Both jobs run: the ledger's day totals are the usage rollup's credits
    summed per tenant and day, refunds on their own day, the rest left out of both."""
    frozen_time.move_to("2026-01-14 10:00:00+00:00")
    ratecard_seed_example()
    fund(tenant, 1000, price_minor=1000)
    fund(other_tenant, 100)

    def record(who: Tenant, key: str, action: str, quantity: int, model_class: str = "") -> None:
        usage_event_record(
            tenant=who,
            data=UsageInput(
                idempotency_key=key, action=action, quantity=D(quantity), model_class=model_class
            ),
        )

    record(tenant, "e1", "chat", 2)
    record(tenant, "e2", "web_research", 1, "turbo")
    run, _ = workflow_start(
        tenant=tenant, external_id="run-1", name="triage", reserve_credits=D(30)
    )
    workflow_step(
        tenant=tenant,
        run=run,
        data=UsageInput(idempotency_key="s1", action="doc_search", quantity=D(2)),
    )
    frozen_time.move_to("2026-01-15 12:00:00+00:00")
    debit = LedgerTransaction.objects.get(tenant=tenant, idempotency_key="usage:e2")
    ledger_reverse(tenant=tenant, debit=debit, idempotency_key="refund-e2", amount=D(20))
    ledger_grant_revoke(
        tenant=tenant, external_reference="pack-1", credits=100, idempotency_key="revoke"
    )
    staff = User.objects.create_user("vendor", is_staff=True)
    ledger_adjust(tenant=tenant, credits=-5, reason="typo", actor=staff, idempotency_key="adj")
    record(tenant, "e3", "chat", 1)
    record(other_tenant, "g1", "doc_search", 1)

    usage_rollup_update()
    debit_days_update()

    usage: dict[tuple[int, date], D] = {}
    for tenant_id, day, credits in UsageDay.objects.values_list("tenant_id", "day", "credits"):
        usage[(tenant_id, day)] = usage.get((tenant_id, day), D(0)) + credits
    debits = {
        (t, day): c for t, day, c in DebitDay.objects.values_list("tenant_id", "day", "credits")
    }
    assert (
        debits
        == usage
        == {
            (tenant.pk, date(2026, 1, 14)): D("68.0000"),
            (tenant.pk, date(2026, 1, 15)): D("-19.0000"),
            (other_tenant.pk, date(2026, 1, 15)): D("3.0000"),
        }
    )
