"""Refunds and lost disputes take back a pack's unspent credits; what was spent becomes debt,
shown to the vendor. With the fake gateway (refunded locally), with Stripe's canned answers,
and through Stripe's signed webhooks, each replayed to show nothing happens twice."""

import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from billing.exceptions import GatewayError, TopUpNotRefundable
from billing.models import AutoTopUpPolicy, CreditPack, StripeEvent, TopUp
from billing.services import (
    auto_topup_policy_update,
    billing_customer_save,
    topup_complete,
    topup_create,
    topup_refund,
)
from ledger.models import CreditBucket, EntryKind, LedgerTransaction
from ledger.selectors import balance_get, ledger_verify
from ledger.services import ledger_debit
from tenants.models import Tenant
from tenants.outbox import OutboxMessage
from tests.billing.stripe_canned import RoutedStripe
from tests.billing.test_stripe_webhook import deliver as signed_delivery

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


def paid(tenant: Tenant, pack: CreditPack, *, gateway: str = "fake") -> TopUp:
    """A paid pack of 500 credits for 65.00 USD, its payment `pi_<id>`."""
    top_up = topup_create(tenant=tenant, pack=pack, gateway=gateway)
    return topup_complete(top_up=top_up, gateway_reference=f"pi_{top_up.pk}")


def spend(tenant: Tenant, credits: str) -> None:
    ledger_debit(tenant=tenant, amount=D(credits), idempotency_key=f"usage:{credits}")


def taken_back(top_up: TopUp) -> tuple[int, Decimal, Decimal, str]:
    top_up.refresh_from_db()
    return (
        top_up.refunded_minor,
        top_up.credits_taken_back,
        top_up.credits_owed,
        top_up.refund_reason,
    )


def reversals(tenant: Tenant) -> list[Decimal]:
    return list(
        LedgerTransaction.objects.filter(tenant=tenant, kind=EntryKind.REVERSAL)
        .order_by("id")
        .values_list("amount", flat=True)
    )


def deliver(event_id: str, type_: str, obj: dict[str, Any]) -> int:
    """Stripe's signed delivery of one event (the stripe package's own signature)."""
    payload = json.dumps(
        {"id": event_id, "object": "event", "type": type_, "data": {"object": obj}}
    )
    return signed_delivery(payload)[0]


def charge(top_up: TopUp, refunded: int) -> dict[str, Any]:
    """A Charge as charge.refunded sends it (no metadata: found by its PaymentIntent)."""
    return {
        "id": f"ch_{top_up.pk}",
        "object": "charge",
        "amount": top_up.amount_minor,
        "amount_refunded": refunded,
        "currency": "usd",
        "payment_intent": top_up.payment_reference,
        "refunded": refunded == top_up.amount_minor,
    }


def test_a_refund_of_a_partly_spent_pack_through_the_fake_gateway(
    tenant: Tenant, pack: CreditPack
) -> None:
    # Given: a paid pack of 500 credits (65.00 USD), 300 of them spent.
    top_up = paid(tenant, pack)
    spend(tenant, "300")
    assert balance_get(tenant=tenant).available == D("200")

    # When: the vendor refunds it.
    refunded = topup_refund(top_up=top_up)

    # Then: the 200 left are taken back, the 300 spent are owed; the pack's bucket is empty.
    assert balance_get(tenant=tenant).available == D("0")
    assert taken_back(refunded) == (6_500, D("200"), D("300"), "refund")
    assert refunded.refund_reference.startswith("fre_")
    assert refunded.refund_idempotency_key == f"refund:{top_up.idempotency_key}:0"
    assert CreditBucket.objects.get(external_reference=f"topup:{top_up.pk}").remaining == D("0")
    assert reversals(tenant) == [D("-200")]
    assert ledger_verify(tenant=tenant) == []
    # And the customer hears of it (a webhook event and an e-mail, through the outbox).
    assert (
        OutboxMessage.objects.filter(
            task="billing.webhook_fanout", kwargs__type="topup.refunded"
        ).count()
        == 1
    )

    # And: a second refund is refused, and takes nothing.
    with pytest.raises(TopUpNotRefundable) as again:
        topup_refund(top_up=refunded)
    assert again.value.message == "This top-up is refunded already."
    assert reversals(tenant) == [D("-200")]


def test_only_a_paid_top_up_can_be_refunded(tenant: Tenant, pack: CreditPack) -> None:
    pending = topup_create(tenant=tenant, pack=pack)
    with pytest.raises(TopUpNotRefundable) as refused:
        topup_refund(top_up=pending)
    assert refused.value.message == "Only a paid top-up with a recorded payment can be refunded."


def test_the_admin_refunds_and_shows_the_debt(tenant: Tenant, pack: CreditPack) -> None:
    top_up = paid(tenant, pack)
    spend(tenant, "450")
    client = Client()
    client.force_login(User.objects.create_superuser("vendor", "v@x.test", "pw-123456"))

    response = client.post(
        "/admin/billing/topup/",
        {"action": "refund", "_selected_action": [str(top_up.pk)]},
        follow=True,
    )

    assert response.status_code == 200
    assert (
        f"Top-up {top_up.pk}: 65.00 USD refunded, 50 credits taken back, 450 already spent."
        in response.content.decode()
    )
    assert balance_get(tenant=tenant).available == D("0")
    page = client.get(f"/admin/billing/topup/{top_up.pk}/change/").content.decode()
    assert "450 credits (58.50 USD)" in page  # 450 of 500 credits bought for 65.00 USD


def test_charge_refunded_in_two_parts_and_replayed(tenant: Tenant, pack: CreditPack) -> None:
    # Given: a Stripe pack of 500 credits, 100 spent.
    top_up = paid(tenant, pack, gateway="stripe")
    spend(tenant, "100")

    # When: half its price is refunded at Stripe's dashboard; the event comes twice, and once
    # more under another event id (Stripe's events say the cumulative amount refunded).
    assert deliver("evt_r1", "charge.refunded", charge(top_up, 3_250)) == 200
    assert deliver("evt_r1", "charge.refunded", charge(top_up, 3_250)) == 200
    assert deliver("evt_r1b", "charge.refunded", charge(top_up, 3_250)) == 200

    # Then: 250 credits (half the pack) are taken back once.
    assert taken_back(top_up) == (3_250, D("250"), D("0"), "refund")
    assert balance_get(tenant=tenant).available == D("150")
    assert StripeEvent.objects.filter(event_id="evt_r1").count() == 1

    # When: the rest is refunded: 250 asked, 150 left, 100 were spent.
    assert deliver("evt_r2", "charge.refunded", charge(top_up, 6_500)) == 200
    assert deliver("evt_r2", "charge.refunded", charge(top_up, 6_500)) == 200

    assert taken_back(top_up) == (6_500, D("400"), D("100"), "refund")
    assert balance_get(tenant=tenant).available == D("0")
    assert reversals(tenant) == [D("-250"), D("-150")]
    assert ledger_verify(tenant=tenant) == []


def test_a_lost_dispute_takes_back_and_one_won_does_not(tenant: Tenant, pack: CreditPack) -> None:
    top_up = paid(tenant, pack, gateway="stripe")
    spend(tenant, "120")
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "amount": 6_500,
        "currency": "usd",
        "charge": "ch_1",
        "payment_intent": top_up.payment_reference,
        "status": "won",
    }

    assert deliver("evt_d0", "charge.dispute.closed", dispute) == 200
    assert StripeEvent.objects.get(event_id="evt_d0").error == (
        "The dispute closed won: nothing is taken back."
    )
    assert balance_get(tenant=tenant).available == D("380")

    lost = {**dispute, "status": "lost"}
    assert deliver("evt_d1", "charge.dispute.closed", lost) == 200
    assert deliver("evt_d1", "charge.dispute.closed", lost) == 200
    assert deliver("evt_d2", "charge.dispute.closed", lost) == 200

    assert taken_back(top_up) == (6_500, D("380"), D("120"), "dispute_lost")
    assert top_up.refund_reference == "dp_1"
    assert balance_get(tenant=tenant).available == D("0")
    assert reversals(tenant) == [D("-380")]


def test_a_refund_of_another_payment_is_noted(
    tenant: Tenant, pack: CreditPack, stripe_offline: RoutedStripe
) -> None:
    top_up = paid(tenant, pack, gateway="stripe")
    other = {**charge(top_up, 6_500), "payment_intent": "pi_elsewhere"}
    # Stripe knows no invoice that this payment paid either.
    stripe_offline.answer("GET", "/v1/invoice_payments", 200, {"object": "list", "data": []})

    assert deliver("evt_x", "charge.refunded", other) == 200

    assert StripeEvent.objects.get(event_id="evt_x").error == "Not the payment of a top-up."
    assert balance_get(tenant=tenant).available == D("500")


def test_the_vendor_refunds_through_stripe_and_its_webhook_changes_nothing(
    tenant: Tenant, pack: CreditPack, canned_stripe: RoutedStripe
) -> None:
    top_up = paid(tenant, pack, gateway="stripe")
    spend(tenant, "100")
    canned_stripe.answer(
        "POST", "/v1/refunds", 200, {"id": "re_1", "object": "refund", "status": "succeeded"}
    )

    topup_refund(top_up=top_up)

    (sent,) = canned_stripe.sent
    assert (sent["path"], sent["idempotency_key"]) == (
        "/v1/refunds",
        f"refund:{top_up.idempotency_key}:0",
    )
    assert sent["form"]["payment_intent"] == [top_up.payment_reference]
    assert sent["form"]["amount"] == ["6500"]
    assert taken_back(top_up) == (6_500, D("400"), D("100"), "refund")
    assert top_up.refund_reference == "re_1"

    assert deliver("evt_r", "charge.refunded", charge(top_up, 6_500)) == 200
    assert reversals(tenant) == [D("-400")]
    assert balance_get(tenant=tenant).available == D("0")


def test_a_gateway_error_takes_nothing_back(
    tenant: Tenant, pack: CreditPack, canned_stripe: RoutedStripe
) -> None:
    top_up = paid(tenant, pack, gateway="stripe")
    canned_stripe.answer(
        "POST",
        "/v1/refunds",
        400,
        {"error": {"type": "invalid_request_error", "message": "Charge already refunded."}},
    )

    with pytest.raises(GatewayError) as failed:
        topup_refund(top_up=top_up)

    assert failed.value.details == {"detail": "Charge already refunded."}
    assert taken_back(top_up) == (0, D("0"), D("0"), "")
    assert balance_get(tenant=tenant).available == D("500")


def test_a_refunded_auto_top_up_turns_auto_top_up_off(tenant: Tenant, pack: CreditPack) -> None:
    # Given: auto top-up on below 100 credits; the balance is 0, so it buys the pack at once.
    billing_customer_save(
        tenant=tenant, gateway="fake", customer_id="fcus_1", payment_method_id="pm_fake_visa"
    )
    auto_topup_policy_update(
        tenant=tenant, enabled=True, threshold=D("100"), pack=pack, monthly_cap_minor=13_000
    )
    (top_up,) = TopUp.objects.filter(tenant=tenant, auto=True)
    assert (top_up.status, balance_get(tenant=tenant).available) == ("succeeded", D("500"))

    # When: the vendor refunds it; the balance falls to 0, under the threshold.
    topup_refund(top_up=top_up)

    # Then: auto top-up is off, and it bought nothing again.
    policy = AutoTopUpPolicy.objects.get(tenant=tenant)
    assert (policy.enabled, policy.state) == (False, "disabled")
    assert policy.disabled_reason == (
        f"Auto top-up {top_up.pk} was refunded: turn auto top-up on again to resume."
    )
    assert balance_get(tenant=tenant).available == D("0")
    assert TopUp.objects.filter(tenant=tenant, auto=True).count() == 1


def test_a_partly_disputed_purchase_loses_only_the_disputed_share(
    tenant: Tenant, pack: CreditPack
) -> None:
    # 500 credits for 65.00 USD: 10.00 refunded first (~76.9 credits), then a dispute of
    # 26.00 more lost: 36.00 gone in all, the credits 36/65 of the pack bought.
    top_up = paid(tenant, pack, gateway="stripe")
    refund = {
        "id": "ch_1",
        "object": "charge",
        "amount_refunded": 1_000,
        "currency": "usd",
        "payment_intent": top_up.payment_reference,
    }
    lost = {
        "id": "dp_9",
        "object": "dispute",
        "amount": 2_600,
        "currency": "usd",
        "charge": "ch_1",
        "payment_intent": top_up.payment_reference,
        "status": "lost",
    }

    assert deliver("evt_r", "charge.refunded", refund) == 200
    assert deliver("evt_d", "charge.dispute.closed", lost) == 200
    assert deliver("evt_d_again", "charge.dispute.closed", lost) == 200  # the same dispute

    assert taken_back(top_up) == (3_600, D("276.9231"), D("0"), "dispute_lost")
    assert balance_get(tenant=tenant).available == D("223.0769")
    assert ledger_verify() == []
