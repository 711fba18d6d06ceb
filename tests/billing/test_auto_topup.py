"""Auto top-up: one in flight, never past the monthly cap, back off and give up on failures."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError, transaction

from billing.gateways.fake import DECLINING_PAYMENT_METHOD, PROCESSING_PAYMENT_METHOD
from billing.models import AutoTopUpPolicy, CreditPack, TopUp, WebhookDelivery
from billing.services import (
    auto_topup_policy_update,
    auto_topup_sweep,
    billing_customer_save,
    topup_create,
    webhook_endpoint_create,
)
from ledger.selectors import available_get
from ledger.services import ledger_debit
from tenants.models import Tenant
from tests.billing.conftest import grant, run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)
START = datetime(2026, 3, 10, 12, tzinfo=UTC)


def setup_policy(
    tenant: Tenant,
    pack: CreditPack,
    *,
    payment_method: str = "pm_fake_visa",
    cap_minor: int = 13_000,
    threshold: str = "200",
) -> None:
    billing_customer_save(
        tenant=tenant, gateway="fake", customer_id="fcus_1", payment_method_id=payment_method
    )
    auto_topup_policy_update(
        tenant=tenant,
        enabled=True,
        threshold=Decimal(threshold),
        pack=pack,
        monthly_cap_minor=cap_minor,
    )


def debit(tenant: Tenant, amount: str, key: str) -> None:
    ledger_debit(tenant=tenant, amount=Decimal(amount), idempotency_key=key)


def auto_top_ups(tenant: Tenant) -> list[tuple[str, int]]:
    return list(
        TopUp.objects.filter(tenant=tenant, auto=True)
        .order_by("id")
        .values_list("status", "amount_minor")
    )


def test_fifty_concurrent_debits_crossing_the_threshold_start_one_top_up(
    tenant: Tenant, pack: CreditPack, owner: object
) -> None:
    grant(tenant, 1000, "promo")
    # The charge stays processing, so the top-up remains in flight during the whole burst.
    setup_policy(tenant, pack, payment_method=PROCESSING_PAYMENT_METHOD)
    debit(tenant, "760", "warm-up")  # 240 left, above the 200 threshold

    results = run_concurrently(50, lambda i: debit(tenant, "2", f"burst-{i}"))

    assert results == [None] * 50
    assert available_get(tenant=tenant) == Decimal("140")
    assert auto_top_ups(tenant) == [("pending", 6_500)]
    # The database, not a check-then-insert, is what refuses a second one in flight.
    with pytest.raises(IntegrityError), transaction.atomic():
        topup_create(tenant=tenant, pack=pack, auto=True)


def test_a_succeeded_auto_top_up_grants_the_pack(tenant: Tenant, pack: CreditPack) -> None:
    grant(tenant, 300, "promo")
    setup_policy(tenant, pack)
    debit(tenant, "150", "d1")
    assert auto_top_ups(tenant) == [("succeeded", 6_500)]
    assert available_get(tenant=tenant) == Decimal("650")


def test_the_monthly_cap_is_never_exceeded_and_resets_next_month(
    tenant: Tenant, pack: CreditPack, owner: object
) -> None:
    endpoint = webhook_endpoint_create(
        tenant=tenant, url="http://127.0.0.1:9/hook", event_types=["auto_topup.capped"]
    )
    with time_machine.travel(START, tick=False) as clock:
        grant(tenant, 300, "promo")
        setup_policy(tenant, pack, cap_minor=13_000)  # room for two $65 packs
        for i in range(6):  # every round spends what is there: a crossing each time
            available = available_get(tenant=tenant)
            if available > 0:
                debit(tenant, str(min(available, Decimal(499))), f"spend-{i}")
        assert auto_top_ups(tenant) == [("succeeded", 6_500), ("succeeded", 6_500)]
        assert sum(a for _, a in auto_top_ups(tenant)) <= 13_000
        policy = AutoTopUpPolicy.objects.get(tenant=tenant)
        assert policy.last_refusal == (
            "Buying the 500 credits pack (65.00 USD) would bring this month's auto top-ups to "
            "195.00 USD, over the monthly cap of 130.00 USD."
        )
        capped_mails = [m for m in mail.outbox if "monthly cap" in m.subject]
        assert len(capped_mails) == 1  # once a month, not once per debit
        assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1

        clock.move_to(datetime(2026, 4, 1, 0, 5, tzinfo=UTC))
        assert auto_topup_sweep() == 1  # a new month: the cap has room again
        assert auto_top_ups(tenant)[-1] == ("succeeded", 6_500)
        assert len(auto_top_ups(tenant)) == 3


def test_failures_back_off_and_three_in_a_row_disable(
    tenant: Tenant, pack: CreditPack, owner: object
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        grant(tenant, 300, "promo")
        setup_policy(tenant, pack, payment_method=DECLINING_PAYMENT_METHOD)
        debit(tenant, "150", "d1")
        policy = AutoTopUpPolicy.objects.get(tenant=tenant)
        assert (policy.state, policy.consecutive_failures, policy.backoff_until) == (
            "backing_off",
            1,
            START + timedelta(minutes=15),
        )
        debit(tenant, "10", "d2")  # still backing off: no new attempt
        assert auto_top_ups(tenant) == [("failed", 6_500)]

        clock.shift(timedelta(minutes=15))
        assert auto_topup_sweep() == 1
        policy.refresh_from_db()
        assert (policy.state, policy.consecutive_failures, policy.backoff_until) == (
            "backing_off",
            2,
            START + timedelta(minutes=15 + 30),
        )

        clock.shift(timedelta(minutes=29))
        assert auto_topup_sweep() == 0
        clock.shift(timedelta(minutes=1))
        assert auto_topup_sweep() == 1
        policy.refresh_from_db()
        assert (policy.state, policy.consecutive_failures) == ("disabled", 3)
        assert policy.disabled_reason == (
            "3 payments failed in a row; the last: Your card was declined."
        )
        clock.shift(timedelta(days=1))
        assert auto_topup_sweep() == 0
    assert auto_top_ups(tenant) == [("failed", 6_500)] * 3
    assert [m.subject for m in mail.outbox].count("[Creditline] A top-up payment failed") == 3
    assert set(TopUp.objects.filter(tenant=tenant).values_list("failure_reason", flat=True)) == {
        "Your card was declined."
    }


def test_saving_the_settings_again_re_enables_a_disabled_policy(
    tenant: Tenant, pack: CreditPack
) -> None:
    setup_policy(tenant, pack)
    AutoTopUpPolicy.objects.filter(tenant=tenant).update(
        state="disabled", consecutive_failures=3, disabled_reason="x"
    )
    setup_policy(tenant, pack)
    policy = AutoTopUpPolicy.objects.get(tenant=tenant)
    assert (policy.state, policy.consecutive_failures, policy.disabled_reason) == ("active", 0, "")
