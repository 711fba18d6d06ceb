"""The sweep and a stale pending auto top-up: charged again only when the charge call never
returned; otherwise the existing PaymentIntent is asked where it stands."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from billing.gateways.base import Charge
from billing.gateways.fake import PROCESSING_PAYMENT_METHOD, FakeGateway
from billing.models import CreditPack, TopUp
from billing.services import (
    auto_topup_policy_update,
    auto_topup_sweep,
    billing_customer_save,
    topup_create,
)
from ledger.selectors import available_get
from ledger.services import ledger_debit
from tenants.models import Tenant
from tests.billing.conftest import grant
from tests.billing.test_stripe_gateway import CannedHttpClient

START = datetime(2026, 3, 10, 12, tzinfo=UTC)


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
