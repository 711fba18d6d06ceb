"""COGS put into the revenue's currency through the vendor's exchange-rate table
(insights/fx.py), exact to the unrounded minor unit, against hand-computed figures.

The case: a customer buys 1,000 credits for 50.00 EUR (5 EUR cents a credit); the cost
catalog is in USD (input tokens $2.50 per 1M). Jan 13: 100 chat credits on 400,000 input
tokens, COGS $1.00. Jan 14: 100 chat credits on 1,204,000 input tokens, COGS $3.01. The vendor's
rates: 1 USD = 0.92 EUR from Jan 1, 0.95 EUR from Jan 14. So Jan 13's COGS is 100 x 0.92 =
92 EUR cents, Jan 14's 301 x 0.95 = 285.95 EUR cents, 377.95 in all against 1,000 EUR cents of
revenue: a 62.2 % gross margin (62.205 %)."""

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User

from insights.fx import fx_cogs
from insights.models import MarginDay
from insights.rollup import insights_rollup_update
from insights.staff_actions import staff_exchange_rate_add
from metering.services import UsageInput, usage_event_record
from ratecards.selectors import price_cache_clear
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db
D = Decimal
JAN13, JAN14 = date(2026, 1, 13), date(2026, 1, 14)


@pytest.fixture(autouse=True)
def _fresh_price_cache() -> Iterator[None]:
    price_cache_clear()
    yield
    price_cache_clear()


def add_rate(on: str, rate: str, to: str = "EUR") -> None:
    staff_exchange_rate_add(
        user=User.objects.get_or_create(username="fx", is_staff=True, is_superuser=True)[0],
        from_currency="USD",
        to_currency=to,
        rate=D(rate),
        effective_on=date.fromisoformat(on),
        source="test",
    )


def spend(tenant: Tenant, currency: str = "EUR", price_minor: int = 5000) -> None:
    """The module's case in `currency` (1,000 credits bought for `price_minor`)."""
    with time_machine.travel("2026-01-13 12:00:00+00:00", tick=False) as clock:
        ratecard_seed_example()
        fund(tenant, 1000, price_minor=price_minor, currency=currency)
        for key, tokens in (("d13", 400_000), ("d14", 1_204_000)):
            usage_event_record(
                tenant=tenant,
                data=UsageInput(
                    idempotency_key=key, action="chat", quantity=D(100), input_tokens=tokens
                ),
            )
            clock.move_to("2026-01-14 12:00:00+00:00")
        insights_rollup_update()


@pytest.fixture
def eur(tenant: Tenant) -> Tenant:
    spend(tenant)
    return tenant


def test_each_day_at_the_rate_in_force_that_day(eur: Tenant) -> None:
    add_rate("2026-01-01", "0.92")
    add_rate("2026-01-14", "0.95")

    by_action = fx_cogs(days=MarginDay.objects.all(), field="action")
    by_day = fx_cogs(days=MarginDay.objects.all(), field="day")

    chat = by_action[("chat", "EUR", "USD")]
    assert chat.converted_minor == D("377.95")
    assert (chat.rates_from, chat.rates_to, chat.missing_from) == (
        date(2026, 1, 1),
        JAN14,
        None,
    )
    assert chat.rates_label == "2026-01-01 to 2026-01-14"
    assert by_day[(JAN13, "EUR", "USD")].converted_minor == D("92")
    assert by_day[(JAN14, "EUR", "USD")].converted_minor == D("285.95")
    assert by_day[(JAN14, "EUR", "USD")].rates_label == "2026-01-14"
    # The rows as recorded: revenue in EUR, COGS in USD, never converted in the rollup.
    assert sorted(MarginDay.objects.values_list("day", "revenue_minor", "cogs_minor")) == [
        (JAN13, D("500"), D("100")),
        (JAN14, D("500"), D("301")),
    ]


def test_a_day_without_a_rate_leaves_its_group_unconverted(eur: Tenant) -> None:
    add_rate("2026-01-14", "0.95")

    chat = fx_cogs(days=MarginDay.objects.all(), field="action")[("chat", "EUR", "USD")]
    by_day = fx_cogs(days=MarginDay.objects.all(), field="day")

    assert (chat.converted_minor, chat.missing_from) == (None, JAN13)
    assert by_day[(JAN13, "EUR", "USD")].converted_minor is None
    assert by_day[(JAN14, "EUR", "USD")].converted_minor == D("285.95")


def test_no_rate_at_all_and_a_rate_of_the_other_direction_convert_nothing(eur: Tenant) -> None:
    staff_exchange_rate_add(
        user=User.objects.create_superuser("boss"),
        from_currency="EUR",
        to_currency="USD",
        rate=D("1.08"),
        effective_on=date(2026, 1, 1),
        source="the other way",
    )

    chat = fx_cogs(days=MarginDay.objects.all(), field="action")[("chat", "EUR", "USD")]

    assert (chat.converted_minor, chat.missing_from, chat.rates_label) == (None, JAN13, "")


def test_minor_units_follow_each_currencys_exponent(tenant: Tenant) -> None:
    """In JPY (no minor unit): $1.00 at 150.5 is 150.5 yen, $3.01 at 151 is 454.51 yen."""
    spend(tenant, currency="JPY", price_minor=5000)
    add_rate("2026-01-01", "150.5", to="JPY")
    add_rate("2026-01-14", "151", to="JPY")

    (converted,) = fx_cogs(days=MarginDay.objects.all(), field="tenant_id").values()

    assert converted.currency == "JPY"
    assert converted.converted_minor == D("605.01")


def test_only_the_groups_asked_for_and_none_in_one_currency(
    eur: Tenant, other_tenant: Tenant
) -> None:
    spend(other_tenant, currency="USD")
    add_rate("2026-01-01", "0.92")

    everyone = fx_cogs(days=MarginDay.objects.all(), field="tenant_id")
    asked = fx_cogs(days=MarginDay.objects.all(), field="tenant_id", keys=[other_tenant.pk])

    assert list(everyone) == [(eur.pk, "EUR", "USD")]
    assert everyone[(eur.pk, "EUR", "USD")].converted_minor == D("368.92")
    assert asked == {}
