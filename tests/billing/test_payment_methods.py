"""The saved card: added and replaced through the gateway's page, shown as brand, last 4 and
expiry (never an id), removed; with Stripe (canned responses, signed webhooks) auto top-up then
charges it exactly as with the fake gateway, capped as before."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing.gateways.fake import AUTHENTICATING_PAYMENT_METHOD
from billing.models import BillingCustomer, CreditPack, StripeEvent, TopUp
from billing.services import auto_topup_charge, billing_customer_save, topup_create
from ledger.selectors import available_get
from ledger.services import ledger_debit
from tenants.models import Tenant
from tests.billing.stripe_canned import RoutedStripe
from tests.billing.test_stripe_webhook import deliver

pytestmark = pytest.mark.django_db(transaction=True)
PUBLIC = "http://127.0.0.1:8000"
SETUP = {"return_url": "https://app.example/settings/billing"}


def portal(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_add_show_replace_and_remove_a_card_with_the_fake_gateway(
    tenant: Tenant, api_client: APIClient, owner: User
) -> None:
    assert api_client.get("/api/v1/payment-method").json() == {"card": None}
    no_return = api_client.post("/api/v1/payment-method", {}, format="json")
    assert no_return.status_code == 422
    assert no_return.json()["error"]["fields"] == {"return_url": ["This field is required."]}

    started = api_client.post("/api/v1/payment-method", SETUP, format="json")
    assert started.status_code == 201
    setup_url = started.json()["setup_url"]
    assert setup_url.startswith(f"{PUBLIC}/billing/cards/fake-setup/?session=fcs_setup_")

    browser = portal(owner)
    page = browser.get(setup_url.removeprefix(PUBLIC)).content.decode()
    assert "Visa ending 4242, expires 12/2030" in page
    assert "pm_fake" not in page
    assert browser.post("/billing/cards/fake-setup/", {"card": "4242"}).status_code == 302

    shown = api_client.get("/api/v1/payment-method")
    assert shown.json() == {
        "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}
    }
    assert "pm_" not in shown.content.decode()
    card_page = browser.get("/payment-methods/").content.decode()
    assert 'data-testid="card-brand">Visa ending 4242<' in card_page
    assert 'data-testid="card-expiry">12/2030<' in card_page
    assert "pm_fake" not in card_page

    # Replace: a new setup page, another card.
    api_client.post("/api/v1/payment-method", SETUP, format="json")
    browser.post("/billing/cards/fake-setup/", {"card": "4444"})
    assert api_client.get("/api/v1/payment-method").json()["card"] == {
        "brand": "mastercard",
        "last4": "4444",
        "exp_month": 6,
        "exp_year": 2031,
    }
    assert BillingCustomer.objects.count() == 1

    assert api_client.delete("/api/v1/payment-method").status_code == 204
    assert api_client.get("/api/v1/payment-method").json() == {"card": None}
    missing = api_client.delete("/api/v1/payment-method")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "payment_method_not_found", "message": "No card is saved."}
    }


def test_a_card_auto_top_up_charges_cannot_be_removed(
    tenant: Tenant, api_client: APIClient, owner: User, pack: CreditPack
) -> None:
    api_client.post("/api/v1/payment-method", SETUP, format="json")
    portal(owner).post("/billing/cards/fake-setup/", {"card": "4242"})
    settings = {"enabled": True, "threshold": "0", "pack": "pack-500", "monthly_cap_minor": 0}
    assert api_client.put("/api/v1/auto-top-up", settings, format="json").status_code == 200

    refused = api_client.delete("/api/v1/payment-method")

    assert refused.status_code == 409
    assert refused.json() == {
        "error": {
            "code": "payment_method_in_use",
            "message": "Auto top-up charges this card: turn auto top-up off before removing it.",
        }
    }
    assert api_client.get("/api/v1/payment-method").json()["card"]["last4"] == "4242"


def save_stripe_card(tenant: Tenant, api_client: APIClient, stripe_http: RoutedStripe) -> None:
    stripe_http.answer("POST", "/v1/customers", 200, {"id": "cus_1", "object": "customer"})
    stripe_http.answer(
        "POST",
        "/v1/checkout/sessions",
        200,
        {
            "id": "cs_setup_1",
            "object": "checkout.session",
            "mode": "setup",
            "url": "https://checkout.stripe.com/c/pay/cs_setup_1",
        },
    )
    stripe_http.answer(
        "GET",
        "/v1/payment_methods/pm_card_1",
        200,
        {
            "id": "pm_card_1",
            "object": "payment_method",
            "type": "card",
            "card": {"brand": "visa", "last4": "4242", "exp_month": 8, "exp_year": 2031},
        },
    )
    stripe_http.answer("POST", "/v1/customers/cus_1", 200, {"id": "cus_1", "object": "customer"})
    started = api_client.post("/api/v1/payment-method", SETUP, format="json")
    assert started.json() == {"setup_url": "https://checkout.stripe.com/c/pay/cs_setup_1"}
    session = stripe_http.sent[1]
    assert (session["path"], session["form"]["mode"], session["form"]["customer"]) == (
        "/v1/checkout/sessions",
        ["setup"],
        ["cus_1"],
    )
    assert session["form"]["setup_intent_data[metadata][tenant_id]"] == [str(tenant.pk)]
    assert session["form"]["success_url"] == [SETUP["return_url"]]
    setup_intent = {
        "id": "seti_1",
        "object": "setup_intent",
        "status": "succeeded",
        "customer": "cus_1",
        "payment_method": "pm_card_1",
        "metadata": {"tenant_id": str(tenant.pk)},
    }
    event: dict[str, object] = {
        "id": "evt_seti_1",
        "object": "event",
        "type": "setup_intent.succeeded",
        "data": {"object": setup_intent},
    }
    assert deliver(json.dumps(event))[0] == 200
    assert deliver(json.dumps(event))[0] == 200  # a second delivery changes nothing


def test_a_stripe_card_is_saved_by_its_webhook_as_the_default(
    tenant: Tenant, api_client: APIClient, canned_stripe: RoutedStripe
) -> None:
    save_stripe_card(tenant, api_client, canned_stripe)

    assert api_client.get("/api/v1/payment-method").json() == {
        "card": {"brand": "visa", "last4": "4242", "exp_month": 8, "exp_year": 2031}
    }
    saved = BillingCustomer.objects.get()
    assert (saved.gateway, saved.customer_id, saved.payment_method_id) == (
        "stripe",
        "cus_1",
        "pm_card_1",
    )
    default = [s for s in canned_stripe.sent if s["path"] == "/v1/customers/cus_1"]
    assert [d["form"]["invoice_settings[default_payment_method]"] for d in default] == [
        ["pm_card_1"]
    ]
    assert StripeEvent.objects.get().error == ""
    assert all(s["idempotency_key"] for s in canned_stripe.sent if s["method"] == "POST")


def test_auto_top_up_charges_the_stripe_card_capped_as_before(
    tenant: Tenant, api_client: APIClient, canned_stripe: RoutedStripe, pack: CreditPack
) -> None:
    save_stripe_card(tenant, api_client, canned_stripe)
    for n in (1, 2):
        canned_stripe.answer(
            "POST",
            "/v1/payment_intents",
            200,
            {"id": f"pi_auto_{n}", "object": "payment_intent", "status": "succeeded"},
        )
        canned_stripe.answer(
            "GET",
            f"/v1/payment_intents/pi_auto_{n}",
            200,
            {
                "id": f"pi_auto_{n}",
                "object": "payment_intent",
                "status": "succeeded",
                "latest_charge": {
                    "id": f"ch_{n}",
                    "object": "charge",
                    "receipt_url": f"https://pay.stripe.com/receipts/r_{n}",
                },
            },
        )
    settings = {
        "enabled": True,
        "threshold": "200",
        "pack": "pack-500",
        "monthly_cap_minor": 13_000,
    }

    assert api_client.put("/api/v1/auto-top-up", settings, format="json").status_code == 200
    assert available_get(tenant=tenant) == Decimal("500")
    ledger_debit(tenant=tenant, amount=Decimal("400"), idempotency_key="d1")
    assert available_get(tenant=tenant) == Decimal("600")
    ledger_debit(tenant=tenant, amount=Decimal("500"), idempotency_key="d2")

    # A third pack would take the month to 195.00 USD, over the 130.00 USD cap.
    assert available_get(tenant=tenant) == Decimal("100")
    top_ups = list(TopUp.objects.order_by("id"))
    assert [(t.status, t.payment_reference, t.receipt_url) for t in top_ups] == [
        ("succeeded", "pi_auto_1", "https://pay.stripe.com/receipts/r_1"),
        ("succeeded", "pi_auto_2", "https://pay.stripe.com/receipts/r_2"),
    ]
    charges = [s for s in canned_stripe.sent if s["path"] == "/v1/payment_intents"]
    assert [
        (
            c["idempotency_key"],
            c["form"]["customer"],
            c["form"]["payment_method"],
            c["form"]["off_session"],
        )
        for c in charges
    ] == [(t.idempotency_key, ["cus_1"], ["pm_card_1"], ["true"]) for t in top_ups]
    policy = api_client.get("/api/v1/auto-top-up").json()
    assert policy["last_refusal"].startswith("Buying the 500 credits pack (65.00 USD) would")
    listed = api_client.get("/api/v1/top-ups").json()["results"]
    assert [t["receipt_url"] for t in listed] == [
        "https://pay.stripe.com/receipts/r_2",
        "https://pay.stripe.com/receipts/r_1",
    ]


SCA_DISABLED = (
    "Your card was declined. This transaction requires authentication. Your bank asks you to "
    "confirm payments yourself: buy a pack at http://127.0.0.1:8000/buy/ (your bank will "
    "ask you there), then turn auto top-up on again."
)


def test_a_charge_the_bank_wants_confirmed_turns_auto_top_up_off_with_a_link(
    tenant: Tenant, api_client: APIClient, pack: CreditPack, owner: User
) -> None:
    billing_customer_save(
        tenant=tenant,
        gateway="fake",
        customer_id="fcus_1",
        payment_method_id=AUTHENTICATING_PAYMENT_METHOD,
    )
    settings = {
        "enabled": True,
        "threshold": "200",
        "pack": "pack-500",
        "monthly_cap_minor": 13_000,
    }

    assert api_client.put("/api/v1/auto-top-up", settings, format="json").status_code == 200

    policy = api_client.get("/api/v1/auto-top-up").json()
    assert (policy["state"], policy["disabled_reason"]) == ("disabled", SCA_DISABLED)
    assert [a["status"] for a in policy["last_attempts"]] == ["failed"]
    assert available_get(tenant=tenant) == 0
    failed = [m.body for m in mail.outbox if m.subject == "[Creditline] A top-up payment failed"]
    assert failed == [f"Your payment of 65.00 USD failed: {SCA_DISABLED}"]


def test_stripe_authentication_required_off_session_is_the_same_state(
    tenant: Tenant, api_client: APIClient, canned_stripe: RoutedStripe, pack: CreditPack
) -> None:
    save_stripe_card(tenant, api_client, canned_stripe)
    canned_stripe.answer(
        "POST",
        "/v1/payment_intents",
        402,
        {
            "error": {
                "type": "card_error",
                "code": "authentication_required",
                "decline_code": "authentication_required",
                "message": "Your card was declined. This transaction requires authentication.",
                "payment_intent": {
                    "id": "pi_sca",
                    "object": "payment_intent",
                    "status": "requires_payment_method",
                },
            }
        },
    )
    settings = {
        "enabled": True,
        "threshold": "200",
        "pack": "pack-500",
        "monthly_cap_minor": 13_000,
    }

    assert api_client.put("/api/v1/auto-top-up", settings, format="json").status_code == 200

    policy = api_client.get("/api/v1/auto-top-up").json()
    assert (policy["state"], policy["disabled_reason"]) == ("disabled", SCA_DISABLED)
    top_up = TopUp.objects.get()
    assert (top_up.status, top_up.gateway_reference) == ("failed", "pi_sca")
    assert available_get(tenant=tenant) == 0


def test_a_charge_retried_after_stripe_forgot_its_key_finds_the_first_payment(
    tenant: Tenant, api_client: APIClient, canned_stripe: RoutedStripe, pack: CreditPack
) -> None:
    save_stripe_card(tenant, api_client, canned_stripe)
    top_up = topup_create(tenant=tenant, pack=pack, auto=True)
    TopUp.objects.filter(pk=top_up.pk).update(created_at=timezone.now() - timedelta(hours=25))
    canned_stripe.answer(
        "GET",
        "/v1/payment_intents/search",
        200,
        {
            "object": "search_result",
            "url": "/v1/payment_intents/search",
            "has_more": False,
            "data": [{"id": "pi_first", "object": "payment_intent", "status": "succeeded"}],
        },
    )

    assert auto_topup_charge(top_up_id=top_up.pk).status == "succeeded"

    assert ("POST", "/v1/payment_intents") not in canned_stripe.paths()
    search = next(s for s in canned_stripe.sent if s["path"] == "/v1/payment_intents/search")
    assert search["query"]["query"] == [
        f"metadata['top_up_id']:'{top_up.pk}' AND metadata['tenant_id']:'{tenant.pk}'"
    ]
    top_up.refresh_from_db()
    assert (top_up.status, top_up.payment_reference) == ("succeeded", "pi_first")
    assert available_get(tenant=tenant) == Decimal("500")


def test_a_day_old_charge_that_never_reached_stripe_is_made_now(
    tenant: Tenant, api_client: APIClient, canned_stripe: RoutedStripe, pack: CreditPack
) -> None:
    save_stripe_card(tenant, api_client, canned_stripe)
    top_up = topup_create(tenant=tenant, pack=pack, auto=True)
    TopUp.objects.filter(pk=top_up.pk).update(created_at=timezone.now() - timedelta(hours=25))
    canned_stripe.answer(
        "GET",
        "/v1/payment_intents/search",
        200,
        {"object": "search_result", "url": "/v1/payment_intents/search", "data": []},
    )
    canned_stripe.answer(
        "POST",
        "/v1/payment_intents",
        200,
        {"id": "pi_late", "object": "payment_intent", "status": "succeeded"},
    )

    assert auto_topup_charge(top_up_id=top_up.pk).status == "succeeded"

    assert [p for p in canned_stripe.paths() if "payment_intents" in p[1]][:2] == [
        ("GET", "/v1/payment_intents/search"),
        ("POST", "/v1/payment_intents"),
    ]
    assert available_get(tenant=tenant) == Decimal("500")
