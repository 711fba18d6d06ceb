"""The sweep and a stale pending auto top-up: charged again only when the charge call never
returned; otherwise the existing PaymentIntent is asked where it stands."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.cache import cache

from billing.gateways.base import Charge, PaymentStatus
from billing.gateways.fake import PROCESSING_PAYMENT_METHOD, FakeGateway
from billing.models import CreditPack, TopUp
from billing.services import (
    auto_topup_policy_update,
    auto_topup_reconcile,
    auto_topup_sweep,
    billing_customer_save,
    topup_complete,
    topup_create,
    topup_fail,
)
from ledger.selectors import available_get
from ledger.services import ledger_debit
from tenants.models import Tenant
from tests.billing.conftest import grant
from tests.billing.test_stripe_gateway import CannedHttpClient

START = datetime(2026, 3, 10, 12, tzinfo=UTC)
PI_7 = {"id": "pi_7", "object": "payment_intent", "last_payment_error": None}


@pytest.fixture
def charges(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every off-session charge the fake gateway is asked to make."""
    made: list[str] = []
    original = FakeGateway.charge_off_session

    def recording(self: FakeGateway, **kwargs: Any) -> Charge:
        made.append(kwargs["top_up"].idempotency_key)
        return original(self, **kwargs)

    monkeypatch.setattr(FakeGateway, "charge_off_session", recording)
    return made


def processing_top_up(tenant: Tenant, pack: CreditPack) -> TopUp:
    grant(tenant, 300, "promo")
    billing_customer_save(
        tenant=tenant,
        gateway="fake",
        customer_id="fcus_1",
        payment_method_id=PROCESSING_PAYMENT_METHOD,
    )
    auto_topup_policy_update(
        tenant=tenant,
        enabled=True,
        threshold=Decimal("200"),
        pack=pack,
        monthly_cap_minor=13_000,
    )
    ledger_debit(tenant=tenant, amount=Decimal("150"), idempotency_key="d1")
    top_up = TopUp.objects.get(tenant=tenant, auto=True)
    assert (top_up.status, top_up.gateway_reference[:4]) == ("pending", "fpi_")
    return top_up


@pytest.mark.django_db(transaction=True)
def test_a_processing_charge_that_clears_completes_without_a_second_charge(
    tenant: Tenant, pack: CreditPack, charges: list[str]
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        top_up = processing_top_up(tenant, pack)
        clock.shift(timedelta(minutes=6))
        assert auto_topup_sweep() == 0  # still processing: left alone
        top_up.refresh_from_db()
        assert top_up.status == "pending"

        FakeGateway.payment_settle(reference=top_up.gateway_reference, status="succeeded")
        clock.shift(timedelta(minutes=6))
        auto_topup_sweep()

    top_up.refresh_from_db()
    assert (top_up.status, top_up.payment_reference) == ("succeeded", top_up.gateway_reference)
    assert available_get(tenant=tenant) == Decimal("650")
    assert charges == [top_up.idempotency_key]  # the one charge; the sweeps only asked


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("status", "failure_reason", "expected"),
    [
        ("requires_payment_method", "Insufficient funds.", "Insufficient funds."),
        ("canceled", "", "The payment did not complete (canceled)."),
        ("requires_capture", "", "The payment was authorized but never captured."),
    ],
)
def test_a_processing_charge_that_did_not_pay_fails_the_top_up(
    tenant: Tenant,
    pack: CreditPack,
    charges: list[str],
    status: str,
    failure_reason: str,
    expected: str,
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        top_up = processing_top_up(tenant, pack)
        FakeGateway.payment_settle(
            reference=top_up.gateway_reference, status=status, failure_reason=failure_reason
        )
        clock.shift(timedelta(minutes=6))
        auto_topup_sweep()

    top_up.refresh_from_db()
    assert (top_up.status, top_up.failure_reason) == ("failed", expected)
    assert available_get(tenant=tenant) == Decimal("150")
    assert charges == [top_up.idempotency_key]
    # The PaymentIntent is cancelled, so it can never be captured or confirmed later.
    assert FakeGateway().payment_status(reference=top_up.gateway_reference).status == "canceled"


@pytest.mark.django_db(transaction=True)
def test_a_failed_auto_top_up_is_not_granted_when_its_payment_succeeds_later(
    tenant: Tenant, pack: CreditPack, charges: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        top_up = processing_top_up(tenant, pack)
        FakeGateway.payment_settle(reference=top_up.gateway_reference, status="requires_capture")
        clock.shift(timedelta(minutes=6))
        auto_topup_sweep()
        # Captured anyway (by hand in the dashboard, say) and the webhook arrives.
        result = topup_complete(top_up=top_up, gateway_reference=top_up.gateway_reference)

    assert (result.status, result.failure_reason) == (
        "failed",
        "The payment was authorized but never captured.",
    )
    assert available_get(tenant=tenant) == Decimal("150")
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"auto top-up {top_up.pk} had failed but payment {top_up.gateway_reference} "
        "succeeded: not granted, needs review"
    ]


@pytest.mark.django_db(transaction=True)
def test_a_payment_that_cannot_be_cancelled_leaves_the_top_up_pending(
    tenant: Tenant, pack: CreditPack
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        top_up = processing_top_up(tenant, pack)
        TopUp.objects.filter(pk=top_up.pk).update(gateway="stripe", gateway_reference="pi_7")
        http = CannedHttpClient(
            [
                (200, {**PI_7, "status": "requires_capture"}),
                (
                    400,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "code": "payment_intent_unexpected_state",
                            "message": "This PaymentIntent's status is succeeded.",
                        }
                    },
                ),
            ]
        )
        with _stripe_over(http):
            clock.shift(timedelta(minutes=6))
            result = auto_topup_reconcile(top_up_id=top_up.pk)

    assert (result.status, available_get(tenant=tenant)) == ("pending", Decimal("150"))
    assert [(s["method"], s["url"]) for s in http.sent] == [
        ("get", "https://api.stripe.com/v1/payment_intents/pi_7"),
        ("post", "https://api.stripe.com/v1/payment_intents/pi_7/cancel"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_requires_capture_stripe_payment_is_cancelled_before_the_top_up_fails(
    tenant: Tenant, pack: CreditPack
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        top_up = processing_top_up(tenant, pack)
        TopUp.objects.filter(pk=top_up.pk).update(gateway="stripe", gateway_reference="pi_7")
        http = CannedHttpClient(
            [
                (200, {**PI_7, "status": "requires_capture"}),
                (200, {**PI_7, "status": "canceled"}),
            ]
        )
        with _stripe_over(http):
            clock.shift(timedelta(minutes=6))
            result = auto_topup_reconcile(top_up_id=top_up.pk)

    assert (result.status, result.failure_reason) == (
        "failed",
        "The payment was authorized but never captured.",
    )
    cancel = http.sent[1]
    assert (cancel["method"], cancel["url"]) == (
        "post",
        "https://api.stripe.com/v1/payment_intents/pi_7/cancel",
    )
    assert cancel["headers"]["Idempotency-Key"] == f"cancel:{top_up.idempotency_key}"


@pytest.mark.django_db(transaction=True)
def test_a_pending_top_up_whose_charge_never_returned_is_charged_again(
    tenant: Tenant, pack: CreditPack, charges: list[str]
) -> None:
    billing_customer_save(
        tenant=tenant, gateway="fake", customer_id="fcus_1", payment_method_id="pm_fake_visa"
    )
    with time_machine.travel(START, tick=False) as clock:
        top_up = topup_create(tenant=tenant, pack=pack, auto=True)  # the worker died here
        clock.shift(timedelta(minutes=6))
        auto_topup_sweep()

    top_up.refresh_from_db()
    assert top_up.status == "succeeded"
    assert charges == [top_up.idempotency_key]


@contextmanager
def _stripe_over(http: CannedHttpClient) -> Iterator[None]:
    """Reconcile talks to the Stripe gateway, and the gateway to canned answers."""
    from billing.gateways.stripe_gateway import StripeGateway

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "billing.services.autotopup.gateway_get", lambda name=None: StripeGateway(http)
        )
        yield


def test_stripe_payment_status_retrieves_the_payment_intent() -> None:
    from billing.gateways.stripe_gateway import StripeGateway

    http = CannedHttpClient(
        [
            (
                200,
                {
                    "id": "pi_9",
                    "object": "payment_intent",
                    "status": "requires_payment_method",
                    "last_payment_error": {"message": "Your card has insufficient funds."},
                },
            )
        ]
    )
    status = StripeGateway(http).payment_status(reference="pi_9")

    assert (status.reference, status.status, status.failure_reason) == (
        "pi_9",
        "requires_payment_method",
        "Your card has insufficient funds.",
    )
    (sent,) = http.sent
    assert (sent["method"], sent["url"]) == (
        "get",
        "https://api.stripe.com/v1/payment_intents/pi_9",
    )


@pytest.mark.django_db(transaction=True)
def test_a_failed_portal_top_up_that_is_paid_later_is_still_granted(
    tenant: Tenant, pack: CreditPack
) -> None:
    # A first card declined in Checkout fails the top-up; a second card in the same session pays.
    top_up = topup_create(tenant=tenant, pack=pack)
    topup_fail(top_up=top_up, reason="Your card was declined.")
    result = topup_complete(top_up=top_up, gateway_reference="pi_second_card")
    assert (result.status, available_get(tenant=tenant)) == ("succeeded", Decimal("500"))


def test_the_fake_keeps_payment_states_in_the_shared_cache() -> None:
    # Written by one process (a worker's charge), read by another (the sweep): only a cache
    # both reach carries it; a class attribute would not.
    FakeGateway.payment_settle(reference="fpi_x", status="requires_capture")
    assert cache.get(FakeGateway.payment_key("fpi_x")) == ("requires_capture", "")
    cache.set(FakeGateway.payment_key("fpi_y"), ("succeeded", ""))
    assert FakeGateway().payment_status(reference="fpi_y") == PaymentStatus("fpi_y", "succeeded")
