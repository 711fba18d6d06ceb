"""COGS put into the revenue's currency through the vendor's exchange-rate table
(insights/fx.py), exact to the unrounded minor unit, against hand-computed figures.

The case: a customer buys 1,000 credits for 50.00 EUR (5 EUR cents a credit); the cost
catalog is in USD (input tokens $2.50 per 1M). Jan 13: 100 chat credits on 400,000 input
tokens, COGS $1.00. Jan 14: 100 chat credits on 1,204,000 input tokens, COGS $3.01. The vendor's
rates: 1 USD = 0.92 EUR from Jan 1, 0.95 EUR from Jan 14. So Jan 13's COGS is 100 x 0.92 =
92 EUR cents, Jan 14's 301 x 0.95 = 285.95 EUR cents, 377.95 in all against 1,000 EUR cents of
revenue: a 62.2 % gross margin (62.205 %)."""

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client

from insights.fx import fx_cogs
from insights.models import MarginDay, Simulation
from insights.rollup import insights_rollup_update
from insights.simulator import simulation_request
from insights.staff_actions import staff_exchange_rate_add
from metering.services import UsageInput, usage_event_record
from ratecards.services import rate_set, ratecard_seed_example, ratecard_version_create_draft
from tenants.models import Tenant
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db
D = Decimal
JAN13, JAN14 = date(2026, 1, 13), date(2026, 1, 14)


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


# The pages: the customers page (its SQL sort and filter too), a customer's page, the margin
# page by customer, action and day. Jan 1-31 is a whole month: the customers page reads the
# tenant's month row and converts its days.

RANGE = "start=2026-01-01&end=2026-01-31"


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("vendor", is_staff=True))
    return client


def _mine(rows: list[Any], tenant: Tenant) -> Any:
    (found,) = [r for r in rows if r.tenant == tenant]
    return found


def test_the_customers_page_converts_and_says_so(
    eur: Tenant, other_tenant: Tenant, staff: Client
) -> None:
    spend(other_tenant, currency="USD", price_minor=1000)  # 2 x 100 credits for 2.00 USD
    add_rate("2026-01-01", "0.92")
    add_rate("2026-01-14", "0.95")

    response = staff.get(f"/console/?{RANGE}&sort=margin&dir=desc")

    rows = response.context["rows"]
    assert [r.tenant for r in rows] == [eur, other_tenant]  # 62.2 % before -100.5 %
    row = _mine(rows, eur)
    (money,) = row.money
    assert money.cogs_minor == D("401")  # USD cents, as recorded
    assert money.cogs_in_revenue_currency_minor == D("377.95")  # EUR cents
    assert (row.margin, row.margin_percent, row.converted) == (D("0.62205"), D("62.2"), True)
    assert _mine(rows, other_tenant).margin_percent == D("-100.5")  # (200 - 401) / 200
    html = response.content.decode()
    assert '4.01 USD<br><span class="fx">→ 3.78 EUR</span>' in html
    assert "at the rates of 2026-01-01<br>to 2026-01-14" in html
    assert "62.2 % <abbr" in html


def test_a_converted_negative_margin_is_flagged_and_filtered(eur: Tenant, staff: Client) -> None:
    add_rate("2026-01-01", "3")  # 401 US cents are 1,203 EUR cents against 1,000 of revenue

    response = staff.get(f"/console/?{RANGE}&negative=1")

    (row,) = response.context["rows"]
    assert (row.tenant, row.margin_percent, row.negative) == (eur, D("-20.3"), True)
    assert b"margin-negative" in response.content


def test_without_a_rate_the_customers_page_says_no_exchange_rate(
    eur: Tenant, other_tenant: Tenant, staff: Client
) -> None:
    spend(other_tenant, currency="USD", price_minor=1000)
    add_rate("2026-01-14", "0.95")  # none for Jan 13

    response = staff.get(f"/console/?{RANGE}&sort=margin&dir=asc")
    negative = staff.get(f"/console/?{RANGE}&negative=1")

    rows = response.context["rows"]
    assert [r.tenant for r in rows] == [other_tenant, eur]  # no margin sorts last
    row = _mine(rows, eur)
    assert (row.margin, row.no_exchange_rate, row.negative) == (None, True, False)
    html = response.content.decode()
    assert '<span class="muted">no exchange rate</span>' in html
    assert "no USD → EUR rate<br>for 2026-01-13" in html
    assert "100.0 %" not in html
    assert [r.tenant for r in negative.context["rows"]] == [other_tenant]


def test_a_customers_page_shows_its_margin_converted(eur: Tenant, staff: Client) -> None:
    add_rate("2026-01-01", "0.92")
    add_rate("2026-01-14", "0.95")

    response = staff.get(f"/console/customers/{eur.pk}/?{RANGE}")

    view = response.context["view"]
    (chat,) = view.by_action
    assert (chat.key, chat.revenue_minor, chat.cogs_minor) == ("chat", D("1000"), D("401"))
    assert (chat.cogs_in_revenue_currency_minor, chat.margin_percent) == (D("377.95"), D("62.2"))
    assert view.by_workflow[0].margin_percent == D("62.2")
    assert "→ 3.78 EUR" in response.content.decode()


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("action", {"chat": ("377.95", "62.2")}),
        ("day", {JAN13: ("92", "81.6"), JAN14: ("285.95", "42.8")}),
        ("tenant", {"T": ("377.95", "62.2")}),
    ],
)
def test_the_margin_page_converts_every_grouping(
    eur: Tenant, staff: Client, by: str, expected: dict[object, tuple[str, str]]
) -> None:
    add_rate("2026-01-01", "0.92")
    add_rate("2026-01-14", "0.95")
    expected = {(eur.pk if k == "T" else k): v for k, v in expected.items()}

    one = staff.get(f"/console/margin/?by={by}&{RANGE}").context["rows"]
    mine = staff.get(f"/console/margin/?by={by}&tenant={eur.pk}&{RANGE}").context["rows"]

    for rows in (one, mine):
        assert {
            r.key: (str(r.cogs_in_revenue_currency_minor.normalize()), str(r.margin_percent))
            for r in rows
        } == expected


def _csv(staff: Client, query: str) -> list[dict[str, str]]:
    response = staff.get(f"/console/margin/?{query}&{RANGE}&format=csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_the_margin_csv_and_chart_say_how_cogs_were_converted(eur: Tenant, staff: Client) -> None:
    add_rate("2026-01-01", "0.92")
    add_rate("2026-01-14", "0.95")

    rows = _csv(staff, "by=day")
    page = staff.get(f"/console/margin/?by=action&{RANGE}")

    assert [
        (
            r["day"],
            r["currency"],
            r["revenue_minor"],
            r["cogs_currency"],
            r["cogs_minor"],
            r["cogs_in_revenue_currency_minor"],
            r["gross_margin_percent"],
            r["exchange_rates"],
        )
        for r in rows
    ] == [
        (
            "2026-01-13",
            "EUR",
            "500.00000000",
            "USD",
            "100.00000000",
            "92.00000000",
            "81.6",
            "USD to EUR at the rates of 2026-01-01",
        ),
        (
            "2026-01-14",
            "EUR",
            "500.00000000",
            "USD",
            "301.00000000",
            "285.95000000",
            "42.8",
            "USD to EUR at the rates of 2026-01-14",
        ),
    ]
    assert page.context["chart"] == {
        "currency": "EUR",
        "labels": ["2026-01-13", "2026-01-14"],
        "revenue": ["5.00", "5.00"],
        "cogs": ["0.92", "2.86"],
        "converted_from": "USD",
    }


def test_without_a_rate_the_csv_leaves_the_margin_blank_and_says_why(
    eur: Tenant, staff: Client
) -> None:
    add_rate("2026-01-14", "0.95")

    rows = _csv(staff, "by=action")
    days = _csv(staff, "by=day")

    assert [
        (r["cogs_in_revenue_currency_minor"], r["gross_margin_percent"], r["exchange_rates"])
        for r in rows
    ] == [("", "", "no exchange rate USD to EUR for 2026-01-13")]
    assert [r["gross_margin_percent"] for r in days] == ["", "42.8"]


# The simulator converts event by event (insights/fx.py RateTable): Globex buys 100 credits for
# 0.90 EUR and chats 10 credits on Jan 10 and on Jan 20, a tool call each (8 US cents); the
# draft doubles chat. At 0.92 from Jan 1 and 0.95 from Jan 15 the COGS are 7.36 + 7.60 = 14.96
# EUR cents, against 18 before and 36 after: 16.9 % before, 58.4 % after.


def _simulated(tenant: Tenant) -> Simulation:
    with time_machine.travel("2026-01-10 12:00:00+00:00", tick=False) as clock:
        card = ratecard_seed_example()
        fund(tenant, 100, price_minor=90, reference="e", currency="EUR")
        for key in ("k10", "k20"):
            usage_event_record(
                tenant=tenant,
                data=UsageInput(idempotency_key=key, action="chat", quantity=D(10), tool_calls=1),
            )
            clock.move_to("2026-01-20 12:00:00+00:00")
    version = ratecard_version_create_draft(rate_card=card)
    rate_set(version=version, action="chat", credits_per_unit="2")
    with time_machine.travel("2026-02-01 09:00:00+00:00", tick=False):
        return simulation_request(user=None, version=version, cost_catalog=None, days=90)


def test_the_simulator_converts_each_event_at_its_days_rate(tenant: Tenant, staff: Client) -> None:
    add_rate("2026-01-01", "0.92")
    add_rate("2026-01-15", "0.95")

    simulation = _simulated(tenant)
    page = staff.get(f"/console/simulations/{simulation.pk}/").content.decode()

    result = simulation.result
    (total,) = result["totals"]
    (customer,) = result["customers"]
    for row in (total, customer):
        assert (row["currency"], row["cogs_currency"]) == ("EUR", "USD")
        assert (row["revenue_before"], row["revenue_after"]) == ("18.00000000", "36.00000000")
        assert (row["cogs_before"], row["cogs_after"]) == ("16.00000000", "16.00000000")
        assert D(row["cogs_before_converted"]) == D(row["cogs_after_converted"]) == D("14.96")
        assert (row["converted"], row["rates"]) == (True, "2026-01-01 to 2026-01-15")
        assert D(row["margin_before"]) == (D(18) - D("14.96")) / D(18)
        assert D(row["margin_after"]) == (D(36) - D("14.96")) / D(36)
    assert "in EUR: 0.15 EUR<br>→ 0.15 EUR<br>at the rates of 2026-01-01 to 2026-01-15" in page
    assert '16.9 %<br>→ <strong>58.4 %</strong><br><span class="muted">(converted)' in page


def test_the_simulator_without_a_rate_shows_no_margin(tenant: Tenant, staff: Client) -> None:
    add_rate("2026-01-15", "0.95")  # none for Jan 10

    simulation = _simulated(tenant)
    page = staff.get(f"/console/simulations/{simulation.pk}/").content.decode()

    (total,) = simulation.result["totals"]
    assert (total["margin_before"], total["margin_after"]) == (None, None)
    assert (total["no_rate"], total["events_without_rate"]) == (True, 1)
    assert "converted" not in total
    assert '<span class="muted">no exchange rate</span>' in page
