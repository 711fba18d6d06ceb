"""The Stripe adapter's own code against canned Stripe responses (no network): the requests it
builds, the idempotency keys it sends, the answers it understands."""

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import pytest
import stripe

from billing.gateways import Card
from billing.gateways.stripe_gateway import StripeGateway
from billing.models import CreditPack, TopUp


class CannedHttpClient(stripe.HTTPClient):
    """Answers each request with the next canned (status, body) and records what was sent."""

    name = "canned"

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        super().__init__()
        self.answers = answers
        self.sent: list[dict[str, Any]] = []

    def request(
        self, method: str, url: str, headers: Any, post_data: Any = None, *, _usage: Any = None
    ) -> tuple[str, int, dict[str, str]]:
        self.sent.append(
            {
                "method": method,
                "url": url,
                "headers": dict(headers or {}),
                "form": parse_qs(post_data or ""),
            }
        )
        status, body = self.answers.pop(0)
        return json.dumps(body), status, {"request-id": "req_canned"}


def top_up() -> TopUp:
    pack = CreditPack(
        slug="pack-500",
        name="500 credits",
        credits=Decimal("500"),
        price_minor=6_500,
        currency="USD",
    )
    return TopUp(
        pk=42,
        tenant_id=7,
        pack=pack,
        credits=pack.credits,
        amount_minor=6_500,
        currency="USD",
        gateway="stripe",
        idempotency_key="topup_abc",
    )


def test_checkout_session_carries_the_top_up_and_its_idempotency_key() -> None:
    http = CannedHttpClient(
        [
            (
                200,
                {
                    "id": "cs_test_9",
                    "object": "checkout.session",
                    "url": "https://checkout.stripe.com/c/pay/cs_test_9",
                },
            )
        ]
    )
    session = StripeGateway(http).checkout_create(
        top_up=top_up(), success_url="https://x.test/ok", cancel_url="https://x.test/no"
    )

    assert (session.reference, session.url) == (
        "cs_test_9",
        "https://checkout.stripe.com/c/pay/cs_test_9",
    )
    (sent,) = http.sent
    assert (sent["method"], sent["url"]) == ("post", "https://api.stripe.com/v1/checkout/sessions")
    assert sent["headers"]["Idempotency-Key"] == "checkout:topup_abc"
    assert sent["headers"]["Authorization"] == "Bearer sk_test_canned"
    form = sent["form"]
    assert form["mode"] == ["payment"]
    assert form["line_items[0][price_data][unit_amount]"] == ["6500"]
    assert form["line_items[0][price_data][currency]"] == ["usd"]
    assert form["metadata[top_up_id]"] == ["42"]
    assert form["payment_intent_data[metadata][tenant_id]"] == ["7"]


def test_off_session_charge_succeeds() -> None:
    http = CannedHttpClient(
        [(200, {"id": "pi_ok", "object": "payment_intent", "status": "succeeded"})]
    )
    charge = StripeGateway(http).charge_off_session(
        top_up=top_up(), customer_id="cus_1", payment_method_id="pm_1"
    )
    assert (charge.reference, charge.status) == ("pi_ok", "succeeded")
    (sent,) = http.sent
    assert sent["url"] == "https://api.stripe.com/v1/payment_intents"
    assert sent["headers"]["Idempotency-Key"] == "topup_abc"
    assert {k: sent["form"][k] for k in ("confirm", "off_session", "amount", "customer")} == {
        "confirm": ["true"],
        "off_session": ["true"],
        "amount": ["6500"],
        "customer": ["cus_1"],
    }


def test_a_declined_off_session_charge_is_a_failed_charge() -> None:
    decline = {
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "message": "Your card was declined.",
            "payment_intent": {
                "id": "pi_declined",
                "object": "payment_intent",
                "status": "requires_payment_method",
            },
        }
    }
    charge = StripeGateway(CannedHttpClient([(402, decline)])).charge_off_session(
        top_up=top_up(), customer_id="cus_1", payment_method_id="pm_1"
    )
    assert charge == type(charge)(
        reference="pi_declined", status="failed", failure_reason="Your card was declined."
    )


def test_a_card_is_set_up_in_checkout_read_and_detached() -> None:
    http = CannedHttpClient(
        [
            (
                200,
                {
                    "id": "cs_setup_1",
                    "object": "checkout.session",
                    "url": "https://checkout.stripe.com/c/pay/cs_setup_1",
                },
            ),
            (
                200,
                {
                    "id": "pm_1",
                    "object": "payment_method",
                    "type": "card",
                    "card": {"brand": "amex", "last4": "0005", "exp_month": 3, "exp_year": 2029},
                },
            ),
            (200, {"id": "pm_0", "object": "payment_method", "type": "card"}),
        ]
    )
    gateway = StripeGateway(http)

    session = gateway.card_setup_create(
        tenant_id=7,
        customer_id="cus_1",
        success_url="https://x.test/ok",
        cancel_url="https://x.test/no",
        idempotency_key="setup:7:1",
    )
    card = gateway.card_get(payment_method_id="pm_1")
    gateway.card_detach(payment_method_id="pm_0", idempotency_key="detach:pm_0")

    assert (session.reference, session.url) == (
        "cs_setup_1",
        "https://checkout.stripe.com/c/pay/cs_setup_1",
    )
    form = http.sent[0]["form"]
    assert (form["mode"], form["customer"], form["setup_intent_data[metadata][tenant_id]"]) == (
        ["setup"],
        ["cus_1"],
        ["7"],
    )
    assert http.sent[0]["headers"]["Idempotency-Key"] == "setup:7:1"
    assert card == Card(brand="amex", last4="0005", exp_month=3, exp_year=2029)
    assert (http.sent[2]["method"], http.sent[2]["url"]) == (
        "post",
        "https://api.stripe.com/v1/payment_methods/pm_0/detach",
    )
    assert http.sent[2]["headers"]["Idempotency-Key"] == "detach:pm_0"


@pytest.mark.django_db
def test_gateway_calls_refuse_to_run_inside_a_transaction() -> None:
    # pytest-django's db fixture wraps the test in a transaction, as a careless caller would.
    with pytest.raises(RuntimeError, match="must not run inside a database transaction"):
        StripeGateway(CannedHttpClient([])).charge_off_session(
            top_up=top_up(), customer_id="cus_1", payment_method_id="pm_1"
        )
