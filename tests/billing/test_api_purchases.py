"""Buying credits over the API and in the portal: packs in the tenant's currency, one top-up per
Idempotency-Key, checkouts that expire or are cancelled, receipts, and bad input."""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing.exceptions import PackNotFound, TopUpNotPending
from billing.models import CreditPack, Subscription, TopUp
from billing.services import (
    auto_topup_policy_update,
    fake_checkout_confirm,
    topup_create,
    topups_expire_due,
)
from ledger.selectors import balance_get
from tenants.models import Tenant
from tests.billing.conftest import run_concurrently
from tests.billing.factories import CreditPackFactory, PlanFactory
from tests.billing.stripe_canned import RoutedStripe
from tests.billing.test_stripe_webhook import checkout_completed, deliver

pytestmark = pytest.mark.django_db(transaction=True)
PUBLIC = "http://127.0.0.1:8000"


@pytest.fixture
def packs(pack: CreditPack) -> list[CreditPack]:
    small = CreditPackFactory.create(
        slug="pack-120", name="120 credits", credits=Decimal("120"), price_minor=1_999
    )
    euro = CreditPackFactory.create(
        slug="pack-500-eur",
        name="500 credits",
        credits=Decimal("500"),
        price_minor=5_900,
        currency="EUR",
    )
    return [small, pack, euro]


def test_credit_packs_lists_the_tenants_currency_with_the_price_per_1000(
    api_client: APIClient, packs: list[CreditPack]
) -> None:
    response = api_client.get("/api/v1/credit-packs")

    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {
                "slug": "pack-120",
                "name": "120 credits",
                "credits": "120.0000",
                "price_minor": 1999,
                "currency": "USD",
                "price": "19.99",
                "price_per_1000_credits": "166.58",
            },
            {
                "slug": "pack-500",
                "name": "500 credits",
                "credits": "500.0000",
                "price_minor": 6500,
                "currency": "USD",
                "price": "65.00",
                "price_per_1000_credits": "130.00",
            },
        ]
    }


def test_the_same_idempotency_key_returns_the_same_top_up(
    tenant: Tenant, api_client: APIClient, packs: list[CreditPack]
) -> None:
    first = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-500"}, format="json", HTTP_IDEMPOTENCY_KEY="buy-1"
    )
    again = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-500"}, format="json", HTTP_IDEMPOTENCY_KEY="buy-1"
    )
    other = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-120"}, format="json", HTTP_IDEMPOTENCY_KEY="buy-1"
    )

    top_up = TopUp.objects.get()
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["id"] == top_up.pk
    assert other.status_code == 409
    assert other.json() == {
        "error": {
            "code": "idempotency_conflict",
            "message": f"This Idempotency-Key was used for top-up {top_up.pk} (pack-500, USD) "
            "with another request.",
            "top_up": top_up.pk,
        }
    }
    assert TopUp.objects.count() == 1
    # Without a key, every request is a purchase of its own.
    api_client.post("/api/v1/top-ups", {"pack": "pack-500"}, format="json")
    assert TopUp.objects.count() == 2


def test_unknown_pack_or_currency_is_a_422_naming_the_field(
    api_client: APIClient, packs: list[CreditPack]
) -> None:
    euro = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-500", "currency": "EUR"}, format="json"
    )
    other_currency_pack = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-500-eur"}, format="json"
    )

    assert euro.status_code == 422
    message = "Packs are sold in USD to this tenant, not 'EUR'."
    assert euro.json() == {
        "error": {
            "code": "currency_not_offered",
            "message": message,
            "fields": {"currency": [message]},
            "field": "currency",
        }
    }
    assert other_currency_pack.status_code == 422
    assert other_currency_pack.json()["error"]["fields"] == {
        "pack": ["No active credit pack in USD has the slug 'pack-500-eur'."]
    }
    assert not TopUp.objects.exists()


def test_the_buy_page_refuses_a_pack_slug_with_a_nul(
    tenant: Tenant, pack: CreditPack, owner: User
) -> None:
    client = Client()
    client.force_login(owner)

    refused = client.post(
        "/buy/", "pack=pack-500%00", content_type="application/x-www-form-urlencoded", follow=True
    )

    assert refused.redirect_chain == [("/buy/", 302)]
    assert "No active credit pack in USD has the slug &#x27;pack-500\x00&#x27;." in (
        refused.content.decode()
    )
    assert not TopUp.objects.exists()


def test_a_pending_checkout_expires_and_can_no_longer_be_paid(
    tenant: Tenant, api_client: APIClient, pack: CreditPack
) -> None:
    body = api_client.post("/api/v1/top-ups", {"pack": "pack-500"}, format="json").json()
    top_up = TopUp.objects.get()
    expires_at = top_up.expires_at
    assert expires_at is not None
    assert body["expires_at"] == expires_at.isoformat().replace("+00:00", "Z")
    assert expires_at - top_up.created_at == timedelta(hours=1)

    assert topups_expire_due() == 0
    with time_machine.travel(expires_at + timedelta(seconds=1)):
        assert topups_expire_due() == 1
        assert topups_expire_due() == 0

    listed = api_client.get(f"/api/v1/top-ups/{top_up.pk}").json()
    assert (listed["status"], listed["checkout_url"], listed["receipt_url"]) == (
        "expired",
        None,
        None,
    )
    assert listed["failure_reason"] == "The checkout session expired unpaid."
    with pytest.raises(TopUpNotPending):
        fake_checkout_confirm(top_up=TopUp.objects.get())
    assert balance_get(tenant=tenant).available == 0


def test_cancel_a_pending_top_up(tenant: Tenant, api_client: APIClient, pack: CreditPack) -> None:
    top_up_id = api_client.post("/api/v1/top-ups", {"pack": "pack-500"}, format="json").json()["id"]

    cancelled = api_client.post(f"/api/v1/top-ups/{top_up_id}/cancel")
    again = api_client.post(f"/api/v1/top-ups/{top_up_id}/cancel")

    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["checkout_url"]) == ("canceled", None)
    assert cancelled.json()["failure_reason"] == "Given up before payment: nothing was charged."
    assert again.status_code == 409
    assert again.json() == {
        "error": {
            "code": "topup_not_pending",
            "message": "This top-up is no longer waiting for payment.",
            "top_up": top_up_id,
        }
    }


def test_top_up_routes_of_another_tenant_are_404_and_need_the_billing_scope(
    tenant: Tenant,
    other_tenant: Tenant,
    make_client: Callable[..., APIClient],
    api_client: APIClient,
    pack: CreditPack,
) -> None:
    top_up_id = api_client.post("/api/v1/top-ups", {"pack": "pack-500"}, format="json").json()["id"]
    other = make_client(other_tenant, scopes=("read", "write", "billing"))
    no_billing = make_client(tenant, scopes=("read", "write"))

    assert other.get(f"/api/v1/top-ups/{top_up_id}").status_code == 404
    assert other.post(f"/api/v1/top-ups/{top_up_id}/cancel").status_code == 404
    for method, path in [
        ("get", "/api/v1/credit-packs"),
        ("get", f"/api/v1/top-ups/{top_up_id}"),
        ("post", f"/api/v1/top-ups/{top_up_id}/cancel"),
        ("get", "/api/v1/payment-method"),
        ("post", "/api/v1/payment-method"),
        ("delete", "/api/v1/payment-method"),
    ]:
        assert getattr(no_billing, method)(path).status_code == 403, path
    assert TopUp.objects.get().status == "pending"


def test_a_paid_fake_top_up_has_a_receipt_in_the_api_and_the_portal(
    tenant: Tenant, api_client: APIClient, pack: CreditPack, owner: User
) -> None:
    top_up_id = api_client.post("/api/v1/top-ups", {"pack": "pack-500"}, format="json").json()["id"]
    pending = api_client.get(f"/api/v1/top-ups/{top_up_id}").json()
    assert (pending["receipt_url"], pending["receipt_number"]) == (None, None)

    fake_checkout_confirm(top_up=TopUp.objects.get())

    paid = api_client.get(f"/api/v1/top-ups/{top_up_id}").json()
    number = f"CL-{tenant.pk}-{top_up_id:06d}"
    assert paid["receipt_url"] == f"{PUBLIC}/buy/receipts/{top_up_id}/"
    assert paid["receipt_number"] == number
    client = Client()
    client.force_login(owner)
    # The portal's receipt link goes to the gateway's receipt: the fake gateway's own page.
    link = client.get(f"/buy/receipts/{top_up_id}/")
    assert (link.status_code, link["Location"]) == (302, f"/billing/top-ups/{top_up_id}/receipt/")
    page = client.get(link["Location"])
    html = page.content.decode()
    completed = TopUp.objects.get().completed_at
    assert page.status_code == 200
    assert f'data-testid="receipt-number">{number}<' in html
    assert f'data-testid="receipt-date">{completed:%Y-%m-%d %H:%M} UTC<' in html
    assert "<td>500 credits (500 credits)</td><td>1</td><td>65.00 USD</td>" in html
    assert 'data-testid="receipt-total">65.00 USD<' in html
    assert 'data-testid="receipt-status">Paid<' in html
    buy_page = client.get("/buy/").content.decode()
    link_html = f'href="/buy/receipts/{top_up_id}/" data-testid="receipt-{top_up_id}">{number}<'
    assert link_html in buy_page


def test_the_portal_offers_pay_or_cancel_for_a_pending_top_up(
    tenant: Tenant, pack: CreditPack, owner: User
) -> None:
    client = Client()
    client.force_login(owner)
    bought = client.post("/buy/", {"pack": "pack-500"})
    top_up = TopUp.objects.get()
    assert (bought.status_code, bought["Location"]) == (302, f"/billing/checkout/fake/{top_up.pk}/")

    page = client.get("/buy/").content.decode()
    assert f'href="/buy/{top_up.pk}/pay/"' in page
    assert f'action="/buy/{top_up.pk}/cancel/"' in page
    pay = client.get(f"/buy/{top_up.pk}/pay/")
    assert (pay.status_code, pay["Location"]) == (302, f"/billing/checkout/fake/{top_up.pk}/")

    cancelled = client.post(f"/buy/{top_up.pk}/cancel/", follow=True)
    assert "The purchase was cancelled; nothing was charged." in cancelled.content.decode()
    top_up.refresh_from_db()
    assert top_up.status == "canceled"
    gone = client.get(f"/buy/{top_up.pk}/pay/")
    assert (gone.status_code, gone["Location"]) == (302, "/buy/")
    after = client.get("/buy/").content.decode()
    assert f"/buy/{top_up.pk}/pay/" not in after
    assert f'data-testid="top-up-{top_up.pk}"' in after  # listed with the past purchases


def test_a_gateway_error_grants_nothing_and_leaves_no_pending_row(
    tenant: Tenant, api_client: APIClient, pack: CreditPack, canned_stripe: RoutedStripe
) -> None:
    canned_stripe.answer(
        "POST",
        "/v1/checkout/sessions",
        400,
        {"error": {"type": "invalid_request_error", "message": "Invalid currency: usd."}},
    )

    response = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-500"}, format="json", HTTP_IDEMPOTENCY_KEY="k-err"
    )

    assert response.status_code == 502
    assert response.json() == {
        "error": {
            "code": "payment_gateway_error",
            "message": "The payment gateway could not be reached; nothing was charged.",
            "detail": "Invalid currency: usd.",
        }
    }
    top_up = TopUp.objects.get()
    assert (top_up.status, top_up.checkout_url, top_up.gateway_reference) == ("failed", "", "")
    assert balance_get(tenant=tenant).available == 0
    # Each call carried an idempotency key derived from the top-up's own.
    assert [s["idempotency_key"] for s in canned_stripe.sent] == [
        f"checkout:{top_up.idempotency_key}"
    ]
    # The same key replays the failed purchase rather than charging again.
    replay = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-500"}, format="json", HTTP_IDEMPOTENCY_KEY="k-err"
    )
    assert (replay.status_code, replay.json()["status"]) == (200, "failed")
    assert len(canned_stripe.sent) == 1


def test_a_stripe_checkout_carries_its_expiry_and_cancel_expires_the_session(
    tenant: Tenant,
    api_client: APIClient,
    pack: CreditPack,
    canned_stripe: RoutedStripe,
    frozen_time: time_machine.Traveller,
) -> None:
    # The clock stands still: the expiry the request sends is the one computed here.
    expires = int(timezone.now().timestamp()) + 3600
    canned_stripe.answer(
        "POST",
        "/v1/checkout/sessions",
        200,
        {
            "id": "cs_test_7",
            "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_7",
            "expires_at": expires,
        },
    )
    canned_stripe.answer(
        "POST",
        "/v1/checkout/sessions/cs_test_7/expire",
        200,
        {"id": "cs_test_7", "object": "checkout.session", "status": "expired"},
    )

    body = api_client.post("/api/v1/top-ups", {"pack": "pack-500"}, format="json").json()
    top_up = TopUp.objects.get()
    assert body["checkout_url"] == "https://checkout.stripe.com/c/pay/cs_test_7"
    assert top_up.expires_at is not None
    assert int(top_up.expires_at.timestamp()) == expires
    assert canned_stripe.sent[0]["form"]["expires_at"] == [str(expires)]

    cancelled = api_client.post(f"/api/v1/top-ups/{top_up.pk}/cancel")

    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "canceled")
    assert canned_stripe.paths()[-1] == ("POST", "/v1/checkout/sessions/cs_test_7/expire")
    assert canned_stripe.sent[-1]["idempotency_key"] == f"expire:{top_up.idempotency_key}"


def test_a_paid_stripe_checkout_links_stripes_receipt(
    tenant: Tenant, api_client: APIClient, pack: CreditPack, canned_stripe: RoutedStripe
) -> None:
    top_up = topup_create(tenant=tenant, pack=pack, gateway="stripe")
    canned_stripe.answer(
        "GET",
        "/v1/payment_intents/pi_test_1",
        200,
        {
            "id": "pi_test_1",
            "object": "payment_intent",
            "status": "succeeded",
            "latest_charge": {
                "id": "ch_1",
                "object": "charge",
                "receipt_url": "https://pay.stripe.com/receipts/acct_1/ch_1/rcpt_1",
            },
        },
    )

    assert deliver(checkout_completed(top_up))[0] == 200

    body = api_client.get(f"/api/v1/top-ups/{top_up.pk}").json()
    assert (body["status"], body["receipt_url"]) == (
        "succeeded",
        "https://pay.stripe.com/receipts/acct_1/ch_1/rcpt_1",
    )
    assert balance_get(tenant=tenant).available == Decimal("500")
    fetched = canned_stripe.sent[-1]
    assert (fetched["path"], fetched["query"]) == (
        "/v1/payment_intents/pi_test_1",
        {"expand[0]": ["latest_charge"]},
    )


def test_a_tenant_billed_in_euros_buys_euro_packs_only(
    tenant: Tenant, api_client: APIClient, packs: list[CreditPack]
) -> None:
    now = timezone.now()
    Subscription.objects.create(
        tenant=tenant,
        plan=PlanFactory.create(slug="pro-eur", currency="EUR"),
        currency="EUR",
        anchor=now,
        current_period_start=now,
        current_period_end=now + timedelta(days=30),
    )

    listed = api_client.get("/api/v1/credit-packs").json()["results"]
    usd = api_client.post("/api/v1/top-ups", {"pack": "pack-500"}, format="json")
    auto = api_client.put(
        "/api/v1/auto-top-up",
        {"enabled": False, "threshold": "10", "pack": "pack-500", "monthly_cap_minor": 0},
        format="json",
    )
    eur = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-500-eur", "currency": "eur"}, format="json"
    )

    assert [(p["slug"], p["price"], p["currency"]) for p in listed] == [
        ("pack-500-eur", "59.00", "EUR")
    ]
    for refused in (usd, auto):
        assert refused.status_code == 422
        assert refused.json()["error"]["fields"] == {
            "pack": ["No active credit pack in EUR has the slug 'pack-500'."]
        }
    assert eur.status_code == 201
    assert (eur.json()["amount_minor"], eur.json()["currency"]) == (5900, "EUR")


def test_concurrent_requests_with_one_idempotency_key_make_one_top_up(
    tenant: Tenant, make_client: Callable[..., APIClient], pack: CreditPack
) -> None:
    clients = [make_client(tenant, scopes=("read", "write", "billing")) for _ in range(8)]

    def buy(i: int) -> tuple[int, int]:
        response = clients[i].post(
            "/api/v1/top-ups", {"pack": "pack-500"}, format="json", HTTP_IDEMPOTENCY_KEY="same"
        )
        return response.status_code, response.json()["id"]

    answers = run_concurrently(8, buy)

    top_up = TopUp.objects.get()
    assert sorted(answers) == [(200, top_up.pk)] * 7 + [(201, top_up.pk)]


def test_auto_top_up_takes_a_pack_in_the_tenants_currency_only(
    tenant: Tenant, packs: list[CreditPack], owner: User
) -> None:
    with pytest.raises(PackNotFound) as refused:
        auto_topup_policy_update(
            tenant=tenant,
            enabled=False,
            threshold=Decimal(10),
            pack=packs[2],
            monthly_cap_minor=0,
        )
    assert refused.value.details == {"pack": "pack-500-eur", "field": "pack"}
    client = Client()
    client.force_login(owner)
    page = client.get("/auto-top-up/").content.decode()
    assert 'value="pack-500"' in page
    assert 'value="pack-500-eur"' not in page


def test_stripe_says_a_checkout_expired(
    tenant: Tenant, pack: CreditPack, canned_stripe: RoutedStripe
) -> None:
    top_up = topup_create(tenant=tenant, pack=pack, gateway="stripe")
    session = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "mode": "payment",
        "status": "expired",
        "metadata": {"top_up_id": str(top_up.pk), "tenant_id": str(tenant.pk)},
    }
    event = {"id": "evt_exp", "object": "event", "type": "checkout.session.expired"}

    assert deliver(json.dumps({**event, "data": {"object": session}}))[0] == 200

    top_up.refresh_from_db()
    assert (top_up.status, top_up.failure_reason) == (
        "expired",
        "The checkout session expired unpaid.",
    )
    assert balance_get(tenant=tenant).available == 0


def test_an_idempotency_key_over_255_characters_is_a_422(
    api_client: APIClient, pack: CreditPack
) -> None:
    response = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-500"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256
    )

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {
        "Idempotency-Key": ["Ensure this header has at most 255 characters."]
    }
    assert not TopUp.objects.exists()


def test_a_replay_opens_the_checkout_a_crashed_first_request_never_did(
    tenant: Tenant, api_client: APIClient, pack: CreditPack, canned_stripe: RoutedStripe
) -> None:
    # The first request committed its top-up and died before the gateway answered.
    fingerprint = hashlib.sha256(b"pack-500\nUSD").hexdigest()
    top_up = topup_create(
        tenant=tenant, pack=pack, request_key="crashed", request_fingerprint=fingerprint
    )
    canned_stripe.answer(
        "POST",
        "/v1/checkout/sessions",
        200,
        {"id": "cs_9", "object": "checkout.session", "url": "https://checkout.stripe.com/c/9"},
    )

    replay = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-500"}, format="json", HTTP_IDEMPOTENCY_KEY="crashed"
    )

    assert replay.status_code == 200
    assert (replay.json()["id"], replay.json()["checkout_url"]) == (
        top_up.pk,
        "https://checkout.stripe.com/c/9",
    )
    # The top-up's own key: had the first call reached Stripe, this returns its session.
    assert [s["idempotency_key"] for s in canned_stripe.sent] == [
        f"checkout:{top_up.idempotency_key}"
    ]
    assert TopUp.objects.count() == 1


def test_a_checkout_from_before_expiries_were_recorded_expires_a_day_on(
    tenant: Tenant, pack: CreditPack
) -> None:
    old = topup_create(tenant=tenant, pack=pack)
    TopUp.objects.filter(pk=old.pk).update(expires_at=None)

    with time_machine.travel(old.created_at + timedelta(hours=23)):
        assert topups_expire_due() == 0
    with time_machine.travel(old.created_at + timedelta(hours=24, seconds=1)):
        assert topups_expire_due() == 1

    assert TopUp.objects.get().status == "expired"


def test_the_fake_checkout_takes_no_payment_past_its_expiry_swept_or_not(
    tenant: Tenant, pack: CreditPack
) -> None:
    top_up = topup_create(tenant=tenant, pack=pack)
    assert top_up.expires_at is not None

    with time_machine.travel(top_up.expires_at), pytest.raises(TopUpNotPending):
        fake_checkout_confirm(top_up=top_up)

    top_up.refresh_from_db()
    assert top_up.status == "expired"
    assert balance_get(tenant=tenant).available == 0
