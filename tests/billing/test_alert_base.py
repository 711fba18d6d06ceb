"""The base of the alerts and the soft cap: what the tenant was last topped up to (README, "Soft
cap and low-balance alerts"), in whole stories: pay-as-you-go, a subscription, a contract, a
refund. Alerts at the default 20% and 10%, the default soft cap at the lowest of them."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from billing.models import AlertState, CreditPack
from billing.services import alert_settings_update, fake_checkout_confirm, topup_create
from ledger.models import CreditBucket, LedgerTransaction
from ledger.selectors import balance_get, credit_account_get
from ledger.services import credit_account_update, ledger_debit, ledger_grant, ledger_reverse
from metering.exceptions import SoftCapReached
from metering.models import WorkflowRun
from metering.soft_cap import soft_cap_get
from metering.workflows import workflow_start
from tenants.models import Tenant
from tests.billing.factories import CreditPackFactory

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal
P = CreditBucket.Policy
S = CreditBucket.Source
UNDER_20 = "Under 20% of your credits left"
UNDER_10 = "Under 10% of your credits left"
USED_UP = "Your credits are used up"


def alerts() -> list[str]:
    """The alert e-mails sent so far (receipts left out), oldest first."""
    subjects = [m.subject.removeprefix("[Creditline] ") for m in mail.outbox]
    return [s for s in subjects if s in {UNDER_20, UNDER_10, USED_UP}]


def spend(tenant: Tenant, amount: str, key: str) -> LedgerTransaction:
    return ledger_debit(tenant=tenant, amount=D(amount), idempotency_key=key).transaction


def buy(tenant: Tenant, pack: CreditPack) -> None:
    """A pack bought through the (fake) payment gateway's checkout."""
    fake_checkout_confirm(top_up=topup_create(tenant=tenant, pack=pack, gateway="fake"))


def states(tenant: Tenant) -> dict[int, str]:
    return dict(AlertState.objects.filter(tenant=tenant).values_list("threshold", "state"))


def test_pay_as_you_go_12th_pack_starts_runs_and_warns_again(tenant: Tenant, owner: object) -> None:
    pack = CreditPackFactory.create(slug="pack-100", credits=D(100), price_minor=1_500)
    # Given 11 packs of 100 bought and spent to the last credit, one after the other
    for n in range(11):
        buy(tenant, pack)
        spend(tenant, "100", f"spend-{n}")
    assert alerts() == [UNDER_20, UNDER_10, USED_UP] * 11
    mail.outbox.clear()

    # When a 12th is bought: topped up to 100 (not to the 1,200 ever bought)
    buy(tenant, pack)
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.topped_up_to) == (D(100), D(100))
    assert states(tenant) == {20: "armed", 10: "armed", 0: "armed"}

    # Then a run starts: the soft cap is 10% of 100
    assert soft_cap_get(tenant=tenant) == D("10.0000")
    run, created = workflow_start(tenant=tenant, external_id="run-12")
    assert (created, run.state) == (True, WorkflowRun.State.RUNNING)

    # Spending 85 of it warns once, under 20% (15 left of 100)
    spend(tenant, "85", "spend-12a")
    assert alerts() == [UNDER_20]
    assert mail.outbox[-1].body == (
        "Acme Agents has 15.0000 of 100.0000 credits left, under 20%. "
        "Top up or turn on auto top-up to keep your agents running."
    )
    spend(tenant, "5", "spend-12b")  # 10 left: not under 10%
    assert alerts() == [UNDER_20]
    # 10 left is the soft cap itself: a run still starts
    assert workflow_start(tenant=tenant, external_id="run-13")[1] is True

    # And the last 10 are under 10%, and exhausted at 0
    spend(tenant, "10", "spend-12c")
    assert alerts() == [UNDER_20, UNDER_10, USED_UP]
    with pytest.raises(SoftCapReached) as refused:
        workflow_start(tenant=tenant, external_id="run-14")
    assert refused.value.details == {"available": "0.0000", "soft_cap": "10.0000"}


def test_subscription_period_plus_a_carried_over_top_up(tenant: Tenant, owner: object) -> None:
    with time_machine.travel(datetime(2026, 1, 15, 12, tzinfo=UTC), tick=False) as clock:
        # Given January's 1000 included credits and a pack of 300, 1100 spent: 200 left of
        # the pack (the included credits went first, they expire first)
        ledger_grant(
            tenant=tenant,
            credits=1000,
            policy=P.MONTHLY_RESET,
            source=S.SUBSCRIPTION,
            external_reference="sub:1:2026-01",
            expires_at=datetime(2026, 2, 1, tzinfo=UTC),
        )
        ledger_grant(
            tenant=tenant, credits=300, policy=P.PERMANENT, source=S.TOPUP, external_reference="p"
        )
        spend(tenant, "1100", "january")
        mail.outbox.clear()

        # When February's 1000 are granted at renewal
        clock.move_to(datetime(2026, 2, 1, 1, tzinfo=UTC))
        ledger_grant(
            tenant=tenant,
            credits=1000,
            policy=P.MONTHLY_RESET,
            source=S.SUBSCRIPTION,
            external_reference="sub:1:2026-02",
            expires_at=datetime(2026, 3, 1, tzinfo=UTC),
        )

        # Then the base is 1200: alerts at 240 and 120, the soft cap at 120
        assert balance_get(tenant=tenant).topped_up_to == D(1200)
        assert soft_cap_get(tenant=tenant) == D(120)
        spend(tenant, "960", "feb-1")  # 240 left: not under 20%
        assert alerts() == []
        spend(tenant, "1", "feb-2")
        assert alerts() == [UNDER_20]
        assert "has 239.0000 of 1200.0000 credits left" in mail.outbox[-1].body
        spend(tenant, "120", "feb-3")  # 119 left: under 10%, and under the soft cap
        assert alerts() == [UNDER_20, UNDER_10]
        with pytest.raises(SoftCapReached) as refused:
            workflow_start(tenant=tenant, external_id="run-1")
        assert refused.value.details == {"available": "119.0000", "soft_cap": "120.0000"}


def test_contract_tranche_after_an_overdraft(tenant: Tenant, owner: object) -> None:
    def tranche(n: int) -> None:
        ledger_grant(
            tenant=tenant,
            credits=6000,
            policy=P.ROLLING_12M,
            source=S.CONTRACT,
            external_reference=f"contract:1:{n}",
            price_minor=600_000,
        )

    # Given a contract's first tranche of 6000 spent, and 200 more lent by its overdraft
    credit_account_update(tenant=tenant, overdraft_limit=D(500))
    tranche(0)
    spend(tenant, "6200", "q1")
    assert alerts() == [UNDER_20, UNDER_10, USED_UP]
    # When the next tranche comes: it repays the 200, the tenant is topped up to 5800
    tranche(1)
    assert balance_get(tenant=tenant).topped_up_to == D(5800)
    assert states(tenant) == {20: "armed", 10: "armed", 0: "armed"}
    assert soft_cap_get(tenant=tenant) == D(580)
    # Then 20% of 5800 is 1160
    spend(tenant, "4640", "q2-a")  # 1160 left
    assert alerts() == [UNDER_20, UNDER_10, USED_UP]
    spend(tenant, "0.0001", "q2-b")
    assert alerts() == [UNDER_20, UNDER_10, USED_UP, UNDER_20]


def test_a_refund_re_arms_an_alert_but_does_not_reset_the_base(
    tenant: Tenant, owner: object
) -> None:
    ledger_grant(
        tenant=tenant, credits=100, policy=P.PERMANENT, source=S.TOPUP, external_reference="p1"
    )
    spend(tenant, "50", "d1")
    big = spend(tenant, "45", "d2")  # 5 left: under 20% and 10%
    assert alerts() == [UNDER_20, UNDER_10]
    # A refund of 30: 35 left of the 100 it was topped up to, so both are re-armed
    ledger_reverse(tenant=tenant, debit=big, idempotency_key="r1", amount=D(30))
    assert balance_get(tenant=tenant).topped_up_to == D(100)
    assert states(tenant) == {20: "armed", 10: "armed", 0: "armed"}
    assert soft_cap_get(tenant=tenant) == D(10)
    # and the next fall under 20 of 100 warns again (the base did not become 35)
    spend(tenant, "16", "d3")  # 19 left
    assert alerts() == [UNDER_20, UNDER_10, UNDER_20]


def test_thresholds_set_while_under_them_fire_at_once(tenant: Tenant, owner: object) -> None:
    ledger_grant(
        tenant=tenant, credits=200, policy=P.PERMANENT, source=S.TOPUP, external_reference="p1"
    )
    spend(tenant, "110", "d1")  # 90 left of 200: 45%
    assert alerts() == []
    alert_settings_update(tenant=tenant, thresholds=[50, 5])
    assert [m.subject for m in mail.outbox][-1:] == ["[Creditline] Under 50% of your credits left"]
    # 5% of 200 is the soft cap now, and the debits' watch level follows the armed 5%
    assert soft_cap_get(tenant=tenant) == D(10)
    assert credit_account_get(tenant=tenant).watch_level == D(10)
