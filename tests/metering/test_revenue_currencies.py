"""Money is never summed across currencies: a debit's revenue is kept per bucket currency, an
event's revenue is dated in the currency of the paid credits it drew (the tenant's when it drew
only free ones), and margins are grouped by currency pair."""

from decimal import Decimal

import pytest
import time_machine

from billing.models import TenantBilling
from ledger.models import CreditBucket
from ledger.services import DebitRequest, DebitResult, ledger_debit_many
from metering.models import UsageEvent
from metering.selectors import margin_summary
from metering.services import usage_event_record
from ratecards.models import RateCard
from ratecards.selectors import price_cache_clear
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import UsageInputFactory, fund

pytestmark = pytest.mark.django_db
PROMOTION = CreditBucket.Source.PROMOTION


@pytest.fixture
def card(frozen_time: time_machine.Traveller) -> RateCard:
    price_cache_clear()
    return ratecard_seed_example()


def _record(tenant: Tenant, key: str, **fields: object) -> UsageEvent:
    data = UsageInputFactory.build(idempotency_key=key, **fields)
    return UsageEvent.objects.get(pk=usage_event_record(tenant=tenant, data=data).event.pk)


def test_a_debit_across_two_currencies_keeps_each_apart(tenant: Tenant) -> None:
    # 10 credits bought for $1.00 (10 c each), then 10 for 2.00 EUR (20 c each).
    fund(tenant, 10, price_minor=100, reference="usd", currency="USD")
    fund(tenant, 10, price_minor=200, reference="eur", currency="EUR")

    (debit,) = ledger_debit_many(
        tenant=tenant, requests=[DebitRequest(amount=Decimal("15"), idempotency_key="d")]
    )

    assert isinstance(debit, DebitResult)
    assert debit.revenue == {"USD": Decimal("100"), "EUR": Decimal("100")}
    with pytest.raises(ValueError, match=r"The debit's revenue is in \['EUR', 'USD'\]"):
        _ = debit.revenue_minor


def test_free_credits_drawn_first_leave_the_revenue_in_the_paid_currency(
    tenant: Tenant, card: RateCard
) -> None:
    # A free 1-credit promotion (granted in the ledger's default currency) is drawn first.
    fund(tenant, 1, reference="promo", source=PROMOTION, currency="USD")
    fund(tenant, 100, price_minor=2_000, reference="eur", currency="EUR")

    event = _record(tenant, "research", action="web_research")  # 10 credits: 1 free, 9 paid

    assert (event.credits, event.revenue_minor, event.revenue_currency) == (
        Decimal("10.0000"),
        Decimal("180.00000000"),
        "EUR",
    )


def test_an_event_that_earned_nothing_is_in_the_tenants_currency(
    tenant: Tenant, card: RateCard
) -> None:
    TenantBilling.objects.create(tenant=tenant, currency="EUR")
    fund(tenant, 100, reference="promo", source=PROMOTION, currency="USD")

    event = _record(tenant, "free-chat")

    assert (event.revenue_minor, event.revenue_currency) == (Decimal("0"), "EUR")


def test_margins_are_grouped_by_currency_pair(tenant: Tenant, card: RateCard) -> None:
    fund(tenant, 1, price_minor=10, reference="usd", currency="USD")
    fund(tenant, 1, price_minor=30, reference="eur", currency="EUR")
    _record(tenant, "first", input_tokens=400_000)  # 1 credit: the USD one, COGS 100 c (USD)
    _record(tenant, "second")  # the EUR credit

    rows = margin_summary(tenant=tenant, group_by="action")

    assert [
        (r.key, r.currency, r.cogs_currency, r.revenue_minor, r.cogs_minor, r.margin_minor)
        for r in rows
    ] == [
        ("chat", "EUR", "USD", Decimal("30"), Decimal("0"), None),
        ("chat", "USD", "USD", Decimal("10"), Decimal("100"), Decimal("-90")),
    ]
