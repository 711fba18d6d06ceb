"""The usage estimator, in the portal (the member's rate card and currency) and in public (the
default card, the vendor's default currency): exact ranges and sentences for known rate cards,
plans and packs, the plan + top-ups advice, and the public page's limits (a 422 naming the
field)."""

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import CreditPack, CreditPackPrice, Plan, PlanPrice
from ratecards.models import RateCardAssignment
from ratecards.services import (
    rate_set,
    ratecard_assign,
    ratecard_create,
    ratecard_seed_example,
    ratecard_version_create_draft,
    ratecard_version_publish,
)
from tenants.models import Tenant
from tests.billing.conftest import plans
from tests.billing.factories import CreditPackFactory
from tests.portal.conftest import Login

pytestmark = pytest.mark.django_db

PUBLIC = "/pricing/estimate/"
__all__ = ["plans"]  # billing's plans fixture


@pytest.fixture
def catalogue(plans: dict[str, Plan]) -> dict[str, Plan]:
    """The example card (chat 1, doc_search 3, web_research 10, action_execution 15, turbo x6)
    and billing's three plans in USD: Starter 250 credits for 29.00, Pro 750 for 79.00,
    Enterprise 5,000 for 499.00 (their prices in USD, what subscribing charges)."""
    ratecard_seed_example()
    for plan in plans.values():
        PlanPrice.objects.create(plan=plan, currency="USD", base_minor=plan.price_minor)
    return plans


def _pack(slug: str, credits: int, price_minor: int, currency: str = "USD") -> CreditPack:
    made: CreditPack = CreditPackFactory.create(
        slug=slug,
        name=f"{credits} credits",
        credits=Decimal(credits),
        price_minor=price_minor,
        currency=currency,
    )
    return made


def _sentence(response: Any) -> str:
    html = response.content.decode()
    start = html.index(">", html.index('class="sentence"')) + 1
    return html[start : html.index("</p>", start)]


def test_the_portal_estimate_names_the_range_and_the_plan_that_fits(
    login: Login, tenant: Tenant, catalogue: dict[str, Plan]
) -> None:
    client = login(tenant, role="member")

    page = client.get(
        "/estimator/",
        {"action": ["chat", "doc_search"], "model_class": ["", ""], "count": ["200", "100"]},
    )

    assert page.status_code == 200
    assert page.context["result"].credits == Decimal("500.0000")
    assert (page.context["result"].low, page.context["result"].high) == (400, 600)
    assert _sentence(page) == (
        "You will use roughly 400–600 credits a month; the 750-credit Pro plan "  # noqa: RUF001
        "(79.00 USD a month) gives comfortable headroom."
    )
    assert "Priced on your rate card in force now (Standard, version 1)" in page.content.decode()


def test_a_smaller_plan_with_top_ups_when_that_costs_less_than_the_next_plan(
    login: Login, tenant: Tenant, catalogue: dict[str, Plan]
) -> None:
    _pack("pack-100", 100, 1_000)
    _pack("pack-500", 500, 6_500)
    client = login(tenant)

    # 250 chat a month: 200-300 credits; Starter (250) + one 100-credit pack = 39.00 < Pro 79.00.
    page = client.get("/estimator/", {"action": "chat", "model_class": "", "count": "250"})

    assert _sentence(page) == (
        "You will use roughly 200–300 credits a month; the 250-credit Starter plan with "  # noqa: RUF001
        "1 × 100-credit top-up pack a month (39.00 USD a month) costs less than the "  # noqa: RUF001
        "750-credit Pro plan (79.00 USD a month)."
    )
    fit = page.context["result"].with_top_ups
    assert (fit.offer.plan.slug, fit.pack.slug, fit.packs, fit.total_minor) == (
        "starter",
        "pack-100",
        1,
        3_900,
    )


def test_beyond_every_plan_the_biggest_plan_with_top_ups_covers_it(
    login: Login, tenant: Tenant, catalogue: dict[str, Plan]
) -> None:
    _pack("pack-500", 500, 6_500)
    client = login(tenant)

    # 1,000 web research: 8,000-12,000; Enterprise + 14 x 500 = 499 + 910 = 1,409.00 beats
    # Pro + 23 packs (1,574.00) and Starter + 24 (1,589.00).
    page = client.get("/estimator/", {"action": "web_research", "count": "1,000"})

    assert page.context["result"].plan is None
    assert _sentence(page) == (
        "You will use roughly 8,000–12,000 credits a month, more than any plan includes; "  # noqa: RUF001
        "the 5,000-credit Enterprise plan with 14 × 500-credit top-up packs a month "  # noqa: RUF001
        "(1,409.00 USD a month) covers it, or ask about an Enterprise contract."
    )


def test_money_is_in_the_tenants_currency(
    login: Login, tenant: Tenant, catalogue: dict[str, Plan], settings: Any
) -> None:
    settings.BILLING_DEFAULT_CURRENCY = "EUR"  # the tenant has no subscription: billed in EUR
    PlanPrice.objects.create(plan=catalogue["pro"], currency="EUR", base_minor=7_200)
    _pack("pack-500-usd", 500, 100)  # a bargain, but not sold in EUR
    client = login(tenant)

    # 600 turbo-free chats → 480-720: only Pro is priced in EUR (Starter, Enterprise are not).
    page = client.get("/estimator/", {"action": "chat", "count": "600"})

    assert _sentence(page) == (
        "You will use roughly 480–720 credits a month; the 750-credit Pro plan "  # noqa: RUF001
        "(72.00 EUR a month) gives comfortable headroom."
    )
    assert page.context["result"].with_top_ups is None


def test_top_ups_are_priced_in_the_tenants_currency_too(
    login: Login, tenant: Tenant, catalogue: dict[str, Plan], settings: Any
) -> None:
    settings.BILLING_DEFAULT_CURRENCY = "EUR"
    PlanPrice.objects.create(plan=catalogue["starter"], currency="EUR", base_minor=2_700)
    PlanPrice.objects.create(plan=catalogue["pro"], currency="EUR", base_minor=7_200)
    pack = _pack("pack-100", 100, 1_000)  # listed in USD, sold in EUR too
    CreditPackPrice.objects.create(pack=pack, currency="EUR", price_minor=900)

    page = login(tenant).get("/estimator/", {"action": "chat", "count": "250"})

    assert _sentence(page) == (
        "You will use roughly 200–300 credits a month; the 250-credit Starter plan with "  # noqa: RUF001
        "1 × 100-credit top-up pack a month (36.00 EUR a month) costs less than the "  # noqa: RUF001
        "750-credit Pro plan (72.00 EUR a month)."
    )


def test_the_portal_prices_on_the_tenants_card_and_the_public_page_on_the_default(
    login: Login, tenant: Tenant, catalogue: dict[str, Plan]
) -> None:
    premium = ratecard_create(name="Premium", slug="premium")
    version = ratecard_version_create_draft(rate_card=premium)
    rate_set(version=version, action="chat", credits_per_unit="2")
    ratecard_version_publish(version=version, effective_from=timezone.now())
    ratecard_assign(tenant=tenant, rate_card=premium, mode=RateCardAssignment.Mode.FOLLOW)
    query = {"action": "chat", "count": "200"}

    mine = login(tenant).get("/estimator/", query)
    public = Client().get(PUBLIC, query)

    assert (mine.context["result"].credits, public.context["result"].credits) == (
        Decimal("400.0000"),
        Decimal("200.0000"),
    )
    assert "Priced on the default rate card (Standard, version 1, in force now)" in (
        public.content.decode()
    )


def test_the_public_estimator_needs_no_login_and_takes_model_classes(
    catalogue: dict[str, Plan],
) -> None:
    page = Client().get(PUBLIC, {"action": "chat", "model_class": "turbo", "count": "100"})

    assert page.status_code == 200
    result = page.context["result"]
    assert [(line.action, line.model_class, line.credits) for line in result.lines] == [
        ("chat", "turbo", Decimal("600.0000"))
    ]
    assert _sentence(page) == (
        "You will use roughly 480–720 credits a month; the 750-credit Pro plan "  # noqa: RUF001
        "(79.00 USD a month) gives comfortable headroom."
    )
    html = page.content.decode()
    # Without JavaScript the page is a plain GET form that keeps what was asked.
    assert '<form method="get" action="/pricing/estimate/"' in html
    assert 'value="100"' in html
    assert '<option value="turbo" selected>turbo</option>' in html


def test_a_blank_public_form_offers_every_action_of_the_card(catalogue: dict[str, Plan]) -> None:
    page = Client().get(PUBLIC)

    assert page.status_code == 200
    assert page.context["result"] is None
    assert [row.action for row in page.context["rows"]] == [
        "action_execution",
        "chat",
        "doc_search",
        "resolution",
        "web_research",
        "",
        "",
    ]


def test_htmx_gets_the_result_alone(catalogue: dict[str, Plan]) -> None:
    page = Client().get(PUBLIC, {"action": "chat", "count": "200"}, HTTP_HX_REQUEST="true")

    html = page.content.decode()
    assert page.status_code == 200
    assert html.strip().startswith('<section id="estimate"')
    assert "<html" not in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"action": "chat", "count": "12abc"},
            "Row 1, monthly count: enter a whole number from 0 to 1,000,000,000 (not “12abc”).",
        ),
        (
            {"action": "chat", "count": "-5"},
            "Row 1, monthly count: enter a whole number from 0 to 1,000,000,000 (not “-5”).",
        ),
        (
            {"action": "chat", "count": "2.5"},
            "Row 1, monthly count: enter a whole number from 0 to 1,000,000,000 (not “2.5”).",
        ),
        (
            {"action": "chat", "count": "1000000001"},
            "Row 1, monthly count: enter a whole number from 0 to 1,000,000,000 "
            "(not “1000000001”).",
        ),
        (
            {"action": ["chat", "teleport"], "count": ["1", "2"]},
            "Row 2, action: “teleport” is not on this rate card.",
        ),
        (
            {"action": "chat", "model_class": "warp", "count": "3"},
            "Row 1, model class: “chat” has no price on “warp” on this rate card.",
        ),
        ({"action": "", "count": "3"}, "Row 1, action: choose the action this count is for."),
        (
            {"action": ["chat"] * 101, "count": ["1"] * 101},
            "Rows: an estimate takes 100 rows at most; this one has 101.",
        ),
    ],
)
def test_the_public_estimator_refuses_bad_input_naming_the_field(
    catalogue: dict[str, Plan], query: dict[str, Any], message: str
) -> None:
    page = Client().get(PUBLIC, query)

    assert page.status_code == 422
    assert [m for _, m in page.context["errors"]] == [message]
    assert page.context["result"] is None
    assert "Check 1 field" in page.content.decode()


def test_every_bad_field_is_named_and_marked(catalogue: dict[str, Plan]) -> None:
    page = Client().get(PUBLIC, {"action": ["chat", "nope", "chat"], "count": ["x", "4", "5"]})

    assert page.status_code == 422
    assert [field for field, _ in page.context["errors"]] == ["count-1", "action-2"]
    html = page.content.decode()
    assert 'id="count-1" name="count" value="x"' in html
    assert html.count('aria-invalid="true"') == 2
    assert '<a href="#action-2">' in html


def test_too_many_fields_for_django_is_a_400(catalogue: dict[str, Plan], settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 50

    page = Client().get(PUBLIC, {"count": ["1"] * 51})

    assert page.status_code == 400
