"""Validly signed Stripe deliveries that are not sound events: each is stored with its error and
answered 200 (never a 4xx, which makes Stripe retry and then disable the endpoint, never a
500), grants nothing, is not retried, and the vendor finds it in the admin.

Signed with the stripe package's own helper (stripe.WebhookSignature), no network."""

import hashlib
import json
from typing import Any

import pytest
import stripe
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from billing.models import CreditPack, StripeEvent, TopUp
from billing.services import topup_create
from billing.services.stripe_events import stripe_events_retry
from ledger.models import CreditBucket
from tenants.models import Tenant
from tests.billing.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/webhooks/stripe"


def deliver(body: str) -> tuple[int, dict[str, Any]]:
    header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)
    response = APIClient().post(
        URL, data=body.encode(), content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    return response.status_code, response.json()


def synthetic_id(body: str) -> str:
    return "malformed_" + hashlib.sha256(body.encode()).hexdigest()[:32]


def event(event_type: str, obj: Any, event_id: str = "evt_bad") -> str:
    return json.dumps({"id": event_id, "object": "event", "type": event_type, "data": obj})


@pytest.fixture
def top_up(tenant: Tenant, pack: CreditPack) -> TopUp:
    return topup_create(tenant=tenant, pack=pack, gateway="stripe")


DEEP = '{"id": "evt_deep", "type": "x", "data": ' + "[" * 40 + "]" * 40 + "}"
VERY_DEEP = '{"id": "evt_deeper", "data": ' + "[" * 5000 + "]" * 5000 + "}"


@pytest.mark.parametrize(
    ("body", "error", "payload"),
    [
        ("not json{", "Malformed: the body is not JSON.", {"unparsed": "not json{"}),
        ('{"id": "evt_1", "amount": NaN}', "Malformed: the body is not JSON.", None),
        ("[]", "Malformed: the body is an array, not an event object.", {"unparsed": "[]"}),
        ('"evt"', "Malformed: the body is a string, not an event object.", None),
        ("null", "Malformed: the body is null, not an event object.", None),
        ('{"type": "x"}', "Malformed: id is null, not a string.", {"type": "x"}),
        ('{"id": 42}', "Malformed: id is a number, not a string.", {"id": 42}),
        ('{"id": ["evt_1"]}', "Malformed: id is an array, not a string.", None),
        ('{"id": ""}', "Malformed: id is empty or longer than 255 characters.", None),
        (
            json.dumps({"id": "evt_" + "x" * 300}),
            "Malformed: id is empty or longer than 255 characters.",
            None,
        ),
        (DEEP, "Malformed: the event nests deeper than 32 levels.", None),
        (VERY_DEEP, "Malformed: the event nests deeper than 32 levels.", None),
    ],
)
def test_a_body_that_is_no_event_is_stored_under_an_id_of_its_bytes(
    body: str, error: str, payload: dict[str, Any] | None
) -> None:
    status, answer = deliver(body)

    assert (status, answer) == (
        200,
        {"received": True, "event": synthetic_id(body), "duplicate": False, "error": error},
    )
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.type, stored.error) == (synthetic_id(body), "", error)
    assert stored.processed_at is not None
    if payload is not None:
        assert stored.payload == payload
    # The same bytes again: the same row.
    assert deliver(body) == (
        200,
        {"received": True, "event": synthetic_id(body), "duplicate": True, "error": error},
    )
    assert StripeEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "stored_type", "error"),
    [
        ('{"id": "evt_t1"}', "", "Malformed: type is null, not a string."),
        ('{"id": "evt_t1", "type": 7}', "", "Malformed: type is a number, not a string."),
        ('{"id": "evt_t1", "type": ""}', "", "Malformed: type is empty."),
        (
            json.dumps({"id": "evt_t1", "type": "t" * 150}),
            "t" * 100,
            "Malformed: type is longer than 100 characters.",
        ),
        (
            '{"id": "evt_t1", "type": "payment_intent.succeeded"}',
            "payment_intent.succeeded",
            "Malformed: data.object is missing or not an object.",
        ),
        (
            event("payment_intent.succeeded", {"object": ["pi_1"]}, "evt_t1"),
            "payment_intent.succeeded",
            "Malformed: data.object is missing or not an object.",
        ),
        (
            event("payment_intent.succeeded", "pi_1", "evt_t1"),
            "payment_intent.succeeded",
            "Malformed: data.object is missing or not an object.",
        ),
    ],
)
def test_an_event_without_a_sound_type_or_object_is_stored_with_its_error(
    body: str, stored_type: str, error: str
) -> None:
    status, answer = deliver(body)

    assert (status, answer) == (
        200,
        {"received": True, "event": "evt_t1", "duplicate": False, "error": error},
    )
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.type, stored.error) == ("evt_t1", stored_type, error)
    assert stored.processed_at is not None


@pytest.mark.parametrize(
    ("event_type", "fields", "error"),
    [
        (
            "checkout.session.completed",
            {"payment_status": "paid", "amount_total": "6500", "currency": "usd"},
            "Malformed: data.object.amount_total is a string, not an integer.",
        ),
        (
            "checkout.session.completed",
            {"payment_status": "paid", "amount_total": 6500.0, "currency": "usd"},
            "Malformed: data.object.amount_total is a number, not an integer.",
        ),
        (
            "checkout.session.completed",
            {"payment_status": "paid", "amount_total": True, "currency": "usd"},
            "Malformed: data.object.amount_total is a boolean, not an integer.",
        ),
        (
            "checkout.session.completed",
            {"payment_status": "paid", "amount_total": 10**30, "currency": "usd"},
            "Malformed: data.object.amount_total is out of range.",
        ),
        (
            "checkout.session.completed",
            {"payment_status": ["paid"]},
            "Malformed: data.object.payment_status is an array, not a string.",
        ),
        (
            "checkout.session.completed",
            {"payment_status": "paid", "amount_total": 6500, "payment_intent": {"id": "pi_1"}},
            "Malformed: data.object.payment_intent is an object, not a string.",
        ),
        (
            "checkout.session.completed",
            {"payment_status": "paid", "amount_total": 6500, "id": None, "payment_intent": None},
            "Malformed: data.object.id is missing.",
        ),
        (
            "payment_intent.succeeded",
            {"amount_received": 6500, "currency": "usd", "id": "pi_" + "x" * 300},
            "Malformed: data.object.id is longer than 255.",
        ),
        (
            "payment_intent.succeeded",
            {"amount_received": 6500, "currency": 840, "id": "pi_1"},
            "Malformed: data.object.currency is a number, not a string.",
        ),
        (
            "payment_intent.payment_failed",
            {"id": "pi_1", "last_payment_error": "declined"},
            "Malformed: data.object.last_payment_error is a string, not an object.",
        ),
        (
            "payment_intent.payment_failed",
            {"id": "pi_1", "metadata": ["tenant_id"]},
            "Malformed: data.object.metadata is an array, not an object.",
        ),
        (
            "setup_intent.succeeded",
            {"customer": {"id": "cus_1"}, "payment_method": "pm_1"},
            "Malformed: data.object.customer is an object, not a string.",
        ),
    ],
)
def test_a_known_type_with_fields_of_the_wrong_shape_is_recorded_not_retried(
    tenant: Tenant, top_up: TopUp, event_type: str, fields: dict[str, Any], error: str
) -> None:
    metadata = {"tenant_id": str(tenant.pk), "top_up_id": str(top_up.pk)}
    obj = {"id": "cs_1", "metadata": metadata} | fields
    body = event(event_type, {"object": obj})

    assert deliver(body) == (200, {"received": True, "event": "evt_bad", "duplicate": False})

    stored = StripeEvent.objects.get()
    assert (stored.error, stored.processed_at is not None) == (error, True)
    assert stripe_events_retry(older_than_seconds=0) == 0
    top_up.refresh_from_db()
    assert top_up.status == "pending"
    assert CreditBucket.objects.count() == 0


@pytest.mark.parametrize(
    "metadata",
    [
        {"tenant_id": "1" + "0" * 30, "top_up_id": "1"},
        {"tenant_id": "-1", "top_up_id": "1"},
        {"tenant_id": "abc", "top_up_id": "1"},
        {"tenant_id": "١٢", "top_up_id": "1"},  # Arabic-Indic digits: isdigit, not ours
        {"tenant_id": True, "top_up_id": "1"},
        {"tenant_id": {"id": 1}, "top_up_id": "1"},
        {"tenant_id": "1\u0000", "top_up_id": "1"},
    ],
)
def test_metadata_that_names_no_top_up_grants_nothing(
    top_up: TopUp, metadata: dict[str, Any]
) -> None:
    obj = {"id": "cs_1", "payment_status": "paid", "amount_total": 6500, "currency": "usd"}
    body = event("checkout.session.completed", {"object": obj | {"metadata": metadata}})

    assert deliver(body) == (200, {"received": True, "event": "evt_bad", "duplicate": False})

    stored = StripeEvent.objects.get()
    assert stored.error == "No top-up matches this event's metadata."
    assert CreditBucket.objects.count() == 0


def test_nul_and_lone_surrogates_are_stored_replaced_and_the_event_still_applies(
    tenant: Tenant, top_up: TopUp
) -> None:
    metadata = {"tenant_id": str(tenant.pk), "top_up_id": str(top_up.pk), "label\x00": "x"}
    obj = {
        "id": "cs_1",
        "payment_status": "paid",
        "amount_total": 6500,
        "currency": "usd",
        "payment_intent": "pi_1",
        "metadata": metadata,
    }
    body = json.dumps(
        {
            "id": "evt_nul",
            "type": "checkout.session.completed",
            "note": "a\x00b\ud800c",
            "data": {"object": obj},
        }
    )
    # As JSON escapes, the way Stripe would send them.
    assert ("\\u0000" in body, "\\ud800" in body) == (True, True)

    assert deliver(body) == (200, {"received": True, "event": "evt_nul", "duplicate": False})

    stored = StripeEvent.objects.get()
    assert stored.payload["note"] == "a\ufffdb?c"
    assert "label\ufffd" in stored.payload["data"]["object"]["metadata"]
    assert (stored.error, stored.processed_at is not None) == ("", True)
    top_up.refresh_from_db()
    assert top_up.status == "succeeded"


def test_a_body_that_is_not_utf8_cannot_be_verified_and_is_refused() -> None:
    header = stripe.WebhookSignature.generate_signature_header("x", WEBHOOK_SECRET)
    response = APIClient().post(
        URL, data=b"\xff\xfe{}", content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_signature",
            "message": "The payload is not UTF-8 text, so its signature cannot be checked.",
        }
    }
    assert not StripeEvent.objects.exists()


def test_the_vendor_sees_malformed_events_and_their_errors_in_the_admin(top_up: TopUp) -> None:
    deliver("[]")
    deliver(event("payment_intent.succeeded", {"object": {"id": "pi_1", "amount": "65"}}))
    deliver(event("customer.created", {"object": {"id": "cus_1"}}, "evt_fine"))
    admin = User.objects.create_superuser("vendor", "vendor@example.com", "pw-vendor-123")
    client = Client()
    client.force_login(admin)

    page = client.get("/admin/billing/stripeevent/", {"state": "malformed"})

    assert page.status_code == 200
    html = page.content.decode()
    assert synthetic_id("[]") in html
    assert "Malformed: the body is an array, not an event object." in html
    assert "evt_bad" in html
    assert "Malformed: data.object.amount is a string, not an integer." in html
    assert "evt_fine" not in html
    detail = client.get(
        f"/admin/billing/stripeevent/{StripeEvent.objects.get(event_id='evt_bad').pk}/change/"
    )
    assert detail.status_code == 200
    assert "Malformed: data.object.amount is a string, not an integer." in detail.content.decode()


def test_a_number_too_large_for_a_double_is_stored_as_null_not_a_500(
    tenant: Tenant, top_up: TopUp
) -> None:
    body = event("customer.updated", {"object": {"id": "cus_1", "balance": 1}}, "evt_big")
    body = body.replace('"balance": 1', '"balance": 1e400')  # parses to infinity

    assert deliver(body) == (200, {"received": True, "event": "evt_big", "duplicate": False})

    stored = StripeEvent.objects.get()
    assert stored.payload["data"]["object"]["balance"] is None
