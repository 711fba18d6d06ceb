"""billing.locks: each lock holds its own row only (a shared pack or the tenant row stays free
for other tenants' transactions), and refuses to run outside a transaction."""

import threading
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from billing.locks import contract_lock, policy_lock, subscription_lock, topup_lock
from billing.models import AutoTopUpPolicy, Contract, CreditPack
from billing.services import topup_create
from ledger.locks import account_lock
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


def locked_elsewhere(model: type, pk: int) -> bool:
    """Whether another connection finds the row locked (FOR UPDATE NOWAIT fails)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with transaction.atomic():
                model.objects.select_for_update(nowait=True).get(pk=pk)  # type: ignore[attr-defined]
            result.append(False)
        except DatabaseError:
            result.append(True)
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(timeout=30)
    return result[0]


def test_policy_and_top_up_locks_leave_the_shared_pack_free(
    tenant: Tenant, pack: CreditPack
) -> None:
    policy = AutoTopUpPolicy.objects.create(
        tenant=tenant, enabled=True, threshold=Decimal(100), pack=pack, monthly_cap_minor=13_000
    )
    top_up = topup_create(tenant=tenant, pack=pack, auto=True)
    with transaction.atomic():
        account_lock(tenant_id=tenant.pk)
        locked_policy = policy_lock(tenant_id=tenant.pk)
        locked_top_up = topup_lock(tenant_id=tenant.pk, top_up_id=top_up.pk)
        assert locked_policy is not None
        assert (locked_policy.pk, locked_policy.pack.slug) == (policy.pk, pack.slug)
        assert locked_top_up.pk == top_up.pk
        assert locked_elsewhere(AutoTopUpPolicy, policy.pk)
        assert not locked_elsewhere(CreditPack, pack.pk)


def test_the_contract_lock_leaves_the_tenant_row_free(tenant: Tenant) -> None:
    contract = Contract.objects.create(
        tenant=tenant,
        name="Acme",
        price_per_1000_minor=800,
        committed_credits=Decimal("1000"),
        start_at="2026-01-01T00:00:00Z",
        end_at="2027-01-01T00:00:00Z",
        rate_card=ratecard_seed_example(),
    )
    with transaction.atomic():
        locked = contract_lock(tenant_id=tenant.pk, contract_id=contract.pk)
        assert locked.tenant.slug == tenant.slug
        assert locked_elsewhere(Contract, contract.pk)
        assert not locked_elsewhere(Tenant, tenant.pk)


def test_locks_refuse_to_run_outside_a_transaction(tenant: Tenant) -> None:
    with pytest.raises(RuntimeError, match=r"policy_lock\(\) must run inside"):
        policy_lock(tenant_id=tenant.pk)
    with pytest.raises(RuntimeError, match=r"subscription_lock\(\) must run inside"):
        subscription_lock(tenant_id=tenant.pk)
