"""metering's usage_event_refund: the event found by its key, its debit reversed by the ledger
under the caller's refund key; refused for another tenant's key, a blank reason, or a key
reused for another amount. At once, on real PostgreSQL: one key refunds once, and refunds
under different keys never give back more than was charged."""

import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection

from ledger.exceptions import IdempotencyConflict, InvalidAmount, NotReversible
from ledger.models import LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from metering.exceptions import UsageEventNotFound
from metering.services import UsageInput, usage_event_record, usage_event_refund
from ratecards.services import ratecard_seed_example
from tenants.events import balance_changed, domain_event, receivers_replaced
from tenants.models import Tenant
from tests.metering.factories import fund

D = Decimal
THREADS = 8


def _spend(tenant: Tenant) -> None:
    """100 credits, of which a web research (key `r1`) spends 10."""
    ratecard_seed_example()
    fund(tenant, 100)
    usage_event_record(
        tenant=tenant, data=UsageInput(idempotency_key="r1", action="web_research", quantity=D(1))
    )


def _refund(tenant: Tenant, key: str, amount: Decimal | None = None) -> LedgerTransaction:
    return usage_event_refund(
        tenant=tenant,
        idempotency_key="r1",
        amount=amount,
        actor=None,
        reason="Failed",
        refund_key=key,
    )


@pytest.mark.django_db
def test_a_refund_key_refunds_once_and_only_for_its_amount(tenant: Tenant) -> None:
    _spend(tenant)

    first = _refund(tenant, "k1", D(4))
    again = _refund(tenant, "k1", D(4))
    with pytest.raises(IdempotencyConflict):
        _refund(tenant, "k1", D(5))
    rest = _refund(tenant, "k2")

    assert again.pk == first.pk
    assert (first.amount, rest.amount) == (D("4.0000"), D("6.0000"))
    assert available_get(tenant=tenant) == D("100.0000")
    with pytest.raises(NotReversible, match=r"^At most 0.0000 credits of this debit"):
        _refund(tenant, "k3")
    assert ledger_verify(tenant=tenant) == []


@pytest.mark.django_db
def test_another_tenants_key_and_a_blank_reason_are_refused(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    _spend(tenant)

    with pytest.raises(UsageEventNotFound):
        _refund(other_tenant, "k1")
    with pytest.raises(InvalidAmount, match=r"^A refund needs a reason\.$"):
        usage_event_refund(
            tenant=tenant, idempotency_key="r1", amount=None, actor=None, reason=" ", refund_key="k"
        )

    assert available_get(tenant=tenant) == D("90.0000")
    assert not LedgerTransaction.objects.filter(kind="reversal").exists()


def _race(call: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(THREADS)
    results: list[object] = [None] * THREADS

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = call(i)
        except Exception as error:  # the refusal is the result
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_key", [True, False])
def test_refunds_at_once_give_back_the_charge_once(tenant: Tenant, same_key: bool) -> None:
    with receivers_replaced(balance_changed), receivers_replaced(domain_event):
        _spend(tenant)

        results = _race(lambda i: _refund(tenant, "k" if same_key else f"k{i}"))

        refunds = [r for r in results if isinstance(r, LedgerTransaction)]
        refused = [r for r in results if isinstance(r, NotReversible)]
        assert len(refunds) + len(refused) == THREADS
        assert {r.pk for r in refunds} == set(
            LedgerTransaction.objects.filter(kind="reversal").values_list("pk", flat=True)
        )
        assert len({r.pk for r in refunds}) == 1
        assert len(refused) == (0 if same_key else THREADS - 1)
        assert available_get(tenant=tenant) == D("100.0000")
        assert ledger_verify(tenant=tenant) == []
