"""The customers page a page at a time, sorted and filtered in SQL over every tenant, with
each customer's gross margin trend against the equal range before (same rollups)."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from insights import views
from insights.customers import customer_list
from insights.rollup import insights_rollup_update
from metering.services import UsageInput, usage_event_record
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db

D = Decimal
# Jan 20 to Feb 10 (22 days: edge days around no whole month); the range before it is
# Dec 29 to Jan 19.
START, END = date(2026, 1, 20), date(2026, 2, 10)
RANGE = "start=2026-01-20&end=2026-02-10"


def _chats(tenant: Tenant, key: str, tokens: int) -> None:
    """100 credits of chat (1 cent each: $1.00 of revenue) whose input tokens cost
    tokens / 4,000 cents ($2.50 per 1M)."""
    usage_event_record(
        tenant=tenant,
        data=UsageInput(idempotency_key=key, action="chat", quantity=D(100), input_tokens=tokens),
    )


@pytest.fixture
def customers() -> dict[str, Tenant]:
    """Margins before (Jan 2) and now (Jan 20 and Feb 10, the range's edge days):
    Alpha 50 % → 70 %, Beta 80 % → 60 %, Gamma none → 90 %, Delta 70 % → -300 % (negative),
    Echo no usage at all."""
    plan = {
        "Alpha": (200_000, 120_000),
        "Beta": (80_000, 160_000),
        "Gamma": (None, 40_000),
        "Delta": (120_000, 1_600_000),
        "Echo": (None, None),
    }
    tenants = {}
    with time_machine.travel("2026-01-02 12:00:00+00:00", tick=False) as clock:
        ratecard_seed_example()
        for name, (before, _) in plan.items():
            tenant = Tenant.objects.create(name=name, slug=name.lower())
            fund(tenant, 1000, price_minor=1000, reference=name)
            tenants[name] = tenant
            if before is not None:
                _chats(tenant, "before", before)
        for name, (_, now) in plan.items():
            if now is not None:
                clock.move_to("2026-01-20 00:00:00+00:00")
                _chats(tenants[name], "now-1", now)
                clock.move_to("2026-02-10 23:59:00+00:00")
                _chats(tenants[name], "now-2", now)
        insights_rollup_update()
    return tenants


def _names(page: object) -> list[str]:
    return [r.tenant.name for r in page.rows]  # type: ignore[attr-defined]


@pytest.mark.usefixtures("customers")
def test_sorted_by_margin_over_every_tenant_a_page_at_a_time() -> None:
    pages = [
        customer_list(start=START, end=END, sort="margin", descending=True, page=n, per_page=2)
        for n in (1, 2, 3)
    ]

    assert [_names(p) for p in pages] == [["Gamma", "Alpha"], ["Beta", "Delta"], ["Echo"]]
    assert [(p.total, p.pages, p.has_previous, p.has_next) for p in pages] == [
        (5, 3, False, True),
        (5, 3, True, True),
        (5, 3, True, False),
    ]
    ascending = customer_list(start=START, end=END, sort="margin", page=1, per_page=5)
    # No margin (Echo) sorts last either way.
    assert _names(ascending) == ["Delta", "Beta", "Alpha", "Gamma", "Echo"]
    by_revenue = customer_list(start=START, end=END, sort="revenue", descending=True)
    assert _names(by_revenue) == ["Alpha", "Beta", "Delta", "Gamma", "Echo"]


@pytest.mark.usefixtures("customers")
def test_the_trend_against_the_range_before() -> None:
    page = customer_list(start=START, end=END)

    assert (page.previous_start, page.previous_end) == (date(2025, 12, 29), date(2026, 1, 19))
    trends = {
        r.tenant.name: (r.previous_margin_percent, r.margin_percent, r.trend) for r in page.rows
    }
    assert trends == {
        "Alpha": (D("50.0"), D("70.0"), D("20.0")),
        "Beta": (D("80.0"), D("60.0"), D("-20.0")),
        "Gamma": (None, D("90.0"), None),
        "Delta": (D("70.0"), D("-300.0"), D("-370.0")),
        "Echo": (None, None, None),
    }
    (delta,) = [r for r in page.rows if r.negative]
    assert delta.tenant.name == "Delta"
    assert delta.credits == D("200")
    assert delta.revenue_by_currency == {"USD": D("200.00000000")}


@pytest.mark.usefixtures("customers")
def test_the_page_filters_flags_and_links_the_next_page(client: Client) -> None:
    client.force_login(User.objects.create_user("vendor", is_staff=True))

    response = client.get(f"/console/?{RANGE}&sort=margin&dir=desc")
    body = response.content.decode()
    assert "▲ +20.0 pt" in body
    assert "▼</span> -20.0 pt" in body
    assert "from 80.0 %" in body
    assert "margin-negative" in body
    assert "5 customers · page 1 of 1" in body

    only = client.get(f"/console/?{RANGE}&negative=1")
    assert [r.tenant.name for r in only.context["rows"]] == ["Delta"]
    named = client.get(f"/console/?{RANGE}&q=ET")
    assert [r.tenant.name for r in named.context["rows"]] == ["Beta"]
    past = client.get(f"/console/?{RANGE}&page=9")
    assert past.context["rows"] == []
    assert "No customers on this page" in past.content.decode()


def test_a_page_of_fifty_links_the_next(client: Client) -> None:
    Tenant.objects.bulk_create(Tenant(name=f"T{n:03}", slug=f"t{n:03}") for n in range(51))
    client.force_login(User.objects.create_user("vendor", is_staff=True))

    first = client.get("/console/?sort=name")
    second = client.get("/console/?sort=name&page=2")

    assert len(first.context["rows"]) == 50
    assert 'href="?sort=name&amp;page=2" rel="next"' in first.content.decode()
    assert [r.tenant.name for r in second.context["rows"]] == ["T050"]
    assert "51 customers · page 2 of 2" in second.content.decode()


@pytest.mark.usefixtures("customers")
@pytest.mark.parametrize("page", ["/console/?", "/console/margin/?by=tenant&"])
def test_as_many_statements_over_a_range_without_usage(client: Client, page: str) -> None:
    client.force_login(User.objects.create_user("vendor", is_staff=True))
    client.get(f"{page}{RANGE}")  # the session's first read

    with CaptureQueriesContext(connection) as used:
        assert client.get(f"{page}{RANGE}").status_code == 200
    with CaptureQueriesContext(connection) as unused:
        assert client.get(f"{page}start=2025-06-01&end=2025-06-30").status_code == 200

    assert len(unused.captured_queries) == len(used.captured_queries)


@pytest.mark.usefixtures("customers")
def test_margin_by_customer_a_page_at_a_time_and_every_one_in_the_csv(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "CUSTOMERS_PER_PAGE", 3)
    client.force_login(User.objects.create_user("vendor", is_staff=True))

    first = client.get(f"/console/margin/?by=tenant&{RANGE}")
    second = client.get(f"/console/margin/?by=tenant&{RANGE}&page=2")
    csv_rows = client.get(f"/console/margin/?by=tenant&{RANGE}&format=csv")

    assert [r.label for r in first.context["rows"]] == ["Alpha", "Beta", "Gamma"]
    assert "customers 1 to 3 of 4" in first.content.decode()
    assert "page=2" in first.content.decode()
    assert [r.label for r in second.context["rows"]] == ["Delta"]
    assert len(csv_rows.content.decode().strip().splitlines()) == 1 + 4
    by_day = client.get(f"/console/margin/?by=day&{RANGE}")
    assert by_day.context["page"] is None
    assert len(by_day.context["rows"]) == 2


@pytest.mark.usefixtures("customers")
def test_a_sort_by_money_compares_amounts_within_their_currency() -> None:
    # Yen pays 500 JPY for its 100 credits of chat: more minor units than anyone's 200 USD
    # cents, but not more money. Sorted by revenue, the yen customer stands with its currency.
    with time_machine.travel("2026-01-20 06:00:00+00:00", tick=False):
        yen = Tenant.objects.create(name="Yen", slug="yen")
        fund(yen, 100, price_minor=500, currency="JPY", reference="yen")
        _chats(yen, "yen-1", 4_000)
        insights_rollup_update()

    descending = customer_list(start=START, end=END, sort="revenue", descending=True)
    ascending = customer_list(start=START, end=END, sort="revenue")

    assert _names(descending) == ["Yen", "Alpha", "Beta", "Delta", "Gamma", "Echo"]
    assert _names(ascending) == ["Yen", "Alpha", "Beta", "Delta", "Gamma", "Echo"]
    (row,) = [r for r in descending.rows if r.tenant.name == "Yen"]
    assert row.revenue_by_currency == {"JPY": D("500.00000000")}
