"""The HTTP contract of estimates, top-ups and auto top-up."""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from billing.models import CreditPack, Plan, PlanPrice, TopUp
from billing.services import billing_customer_save, fake_checkout_confirm
from ledger.models import CreditBucket
from ledger.selectors import balance_get
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant


@pytest.fixture
def card(db: None) -> None:
    ratecard_seed_example()


@pytest.fixture
def usd(plans: dict[str, Plan]) -> dict[str, Plan]:
    """billing's plans with their prices in USD (what subscribing charges): a plan without a
    price in the currency is not offered."""
    for plan in plans.values():
        PlanPrice.objects.create(plan=plan, currency="USD", base_minor=plan.price_minor)
    return plans


@pytest.mark.django_db
def test_estimate_names_the_band_the_plan_and_the_sentence(
    api_client: APIClient, card: None, usd: dict[str, Plan]
) -> None:
    response = api_client.post(
        "/api/v1/estimates",
        {
            "actions": [
                {"action": "chat", "monthly_count": 200},
                {"action": "doc_search", "monthly_count": 100},
            ]
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("credits", "low", "high", "band_percent", "sentence")} == {
        "credits": "500.0000",
        "low": 400,
        "high": 600,
        "band_percent": 20,
        "sentence": "You will use roughly 400–600 credits a month; "  # noqa: RUF001
        "the 750-credit Pro plan (79.00 USD a month) gives comfortable headroom.",
    }
    assert body["plan"] == {
        "slug": "pro",
        "name": "Pro",
        "included_credits": "750.0000",
        "price_minor": 7900,
        "currency": "USD",
    }


@pytest.mark.django_db
def test_estimate_prices_the_plan_in_the_tenants_currency(
    api_client: APIClient, card: None, plans: dict[str, Plan], settings: Any
) -> None:
    settings.BILLING_DEFAULT_CURRENCY = "EUR"
    PlanPrice.objects.create(plan=plans["pro"], currency="EUR", base_minor=7_200)

    body = api_client.post(
        "/api/v1/estimates",
        {"actions": [{"action": "chat", "monthly_count": 500}]},
        format="json",
    ).json()

    assert (body["plan"]["slug"], body["plan"]["price_minor"], body["plan"]["currency"]) == (
        "pro",
        7200,
        "EUR",
    )
    assert body["sentence"].endswith(
        "the 750-credit Pro plan (72.00 EUR a month) gives comfortable headroom."
    )


@pytest.mark.django_db
def test_estimate_with_a_model_class_mix(
    api_client: APIClient, card: None, usd: dict[str, Plan]
) -> None:
    response = api_client.post(
        "/api/v1/estimates",
        {
            "actions": [
                {"action": "chat", "monthly_count": 100, "model_mix": {"turbo": "0.5"}},
            ]
        },
        format="json",
    )
    body = response.json()
    assert body["credits"] == "350.0000"  # 50 x 1 + 50 x 6
    assert [(line["model_class"], line["credits"]) for line in body["lines"]] == [
        ("", "50.0000"),
        ("turbo", "300.0000"),
    ]
    assert (body["low"], body["high"], body["plan"]["slug"]) == (280, 420, "pro")


@pytest.mark.django_db
def test_estimate_beyond_every_plan_and_errors(
    api_client: APIClient, card: None, plans: dict[str, Plan]
) -> None:
    big = api_client.post(
        "/api/v1/estimates",
        {"actions": [{"action": "web_research", "monthly_count": 1000}]},
        format="json",
    ).json()
    assert big["plan"] is None
    assert big["sentence"] == (
        "You will use roughly 8,000–12,000 credits a month, more than any plan includes; "  # noqa: RUF001
        "an Enterprise contract or top-ups cover the rest."
    )
    unknown = api_client.post(
        "/api/v1/estimates",
        {"actions": [{"action": "teleport", "monthly_count": 1}]},
        format="json",
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_action"
    empty = api_client.post("/api/v1/estimates", {"actions": []}, format="json")
    assert empty.status_code == 422
    assert empty.json()["error"]["code"] == "invalid_input"


@pytest.mark.django_db(transaction=True)
def test_buy_a_pack_then_confirm_grants_once(
    tenant: Tenant, api_client: APIClient, pack: CreditPack
) -> None:
    response = api_client.post("/api/v1/top-ups", {"pack": "pack-500"}, format="json")
    assert response.status_code == 201
    body = response.json()
    top_up = TopUp.objects.get(pk=body["id"])
    assert {
        k: body[k]
        for k in (
            "pack",
            "credits",
            "amount_minor",
            "currency",
            "status",
            "gateway",
            "auto",
            "checkout_url",
        )
    } == {
        "pack": "pack-500",
        "credits": "500.0000",
        "amount_minor": 6500,
        "currency": "USD",
        "status": "pending",
        "gateway": "fake",
        "auto": False,
        "checkout_url": f"http://127.0.0.1:8000/billing/checkout/fake/{top_up.pk}/",
    }
    assert balance_get(tenant=tenant).available == 0  # nothing before payment

    fake_checkout_confirm(top_up=top_up)
    fake_checkout_confirm(top_up=top_up)
    assert balance_get(tenant=tenant).available == Decimal("500")
    assert CreditBucket.objects.filter(tenant=tenant).count() == 1

    listed = api_client.get("/api/v1/top-ups").json()
    assert [(t["id"], t["status"], t["checkout_url"]) for t in listed["results"]] == [
        (top_up.pk, "succeeded", None)
    ]


@pytest.mark.django_db
def test_top_up_errors_and_isolation(
    api_client: APIClient,
    make_client: Callable[..., APIClient],
    other_tenant: Tenant,
    pack: CreditPack,
) -> None:
    unknown = api_client.post("/api/v1/top-ups", {"pack": "nope"}, format="json")
    assert unknown.status_code == 422
    assert unknown.json() == {
        "error": {
            "code": "pack_not_found",
            "message": "No active credit pack in USD has the slug 'nope'.",
            "fields": {"pack": ["No active credit pack in USD has the slug 'nope'."]},
            "pack": "nope",
            "field": "pack",
        }
    }
    other = make_client(other_tenant, scopes=("read", "billing"))
    assert other.get("/api/v1/top-ups").json()["results"] == []


@pytest.mark.django_db(transaction=True)
def test_auto_top_up_get_and_put(tenant: Tenant, api_client: APIClient, pack: CreditPack) -> None:
    assert api_client.get("/api/v1/auto-top-up").json() == {
        "enabled": False,
        "state": None,
        "last_attempts": [],
    }
    settings = {"enabled": True, "threshold": "100", "pack": "pack-500", "monthly_cap_minor": 20000}
    refused = api_client.put("/api/v1/auto-top-up", settings, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "no_payment_method"

    billing_customer_save(tenant=tenant, gateway="fake", customer_id="fcus", payment_method_id="pm")
    saved = api_client.put("/api/v1/auto-top-up", settings, format="json")
    assert saved.status_code == 200
    body = saved.json()
    assert {
        k: body[k]
        for k in (
            "enabled",
            "threshold",
            "pack",
            "monthly_cap_minor",
            "currency",
            "state",
            "consecutive_failures",
        )
    } == {
        "enabled": True,
        "threshold": "100.0000",
        "pack": "pack-500",
        "monthly_cap_minor": 20000,
        "currency": "USD",
        "state": "active",
        "consecutive_failures": 0,
    }
    # The balance (0) was already under the threshold: saving started a top-up at once.
    after = api_client.get("/api/v1/auto-top-up").json()
    assert [(a["status"], a["amount_minor"]) for a in after["last_attempts"]] == [
        ("succeeded", 6500)
    ]
    assert balance_get(tenant=tenant).available == Decimal("500")
    bad = api_client.put(
        "/api/v1/auto-top-up", {**settings, "monthly_cap_minor": -1}, format="json"
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"] == {
        "monthly_cap_minor": ["Ensure this value is greater than or equal to 0."]
    }
