"""A contract's terms written by staff (the vendor console; the admin has its own form): one
path to create a contract and one to edit it, each validated by `contract_validate` first, and
an active contract's changed terms re-applied by `contract_activate` (its assignment, overdraft
and tranches; idempotent). Once a contract is no longer a draft, the terms its granted tranches
were sized and priced by cannot change (LOCKED_WHEN_ACTIVE)."""

from typing import Any

from django.db import transaction

from billing.exceptions import InvalidContract
from billing.locks import contract_lock
from billing.models import Contract
from billing.services.contracts import contract_activate, contract_validate
from ledger.locks import account_lock
from tenants.models import Tenant

TERMS = (
    "name",
    "price_per_1000_minor",
    "currency",
    "committed_credits",
    "grant_schedule",
    "start_at",
    "end_at",
    "rate_card",
    "rate_card_mode",
    "notice_days",
    "pinned_version",
    "pinned_until",
    "overdraft_limit",
    "monthly_spending_cap_minor",
    "net_terms_days",
    "credits_on",
    "overage_price_per_1000_minor",
)
LOCKED_WHEN_ACTIVE = (
    "committed_credits",
    "price_per_1000_minor",
    "currency",
    "grant_schedule",
    "start_at",
    "end_at",
)


def contract_create(*, tenant: Tenant, terms: dict[str, Any]) -> Contract:
    """A draft contract (activate it to put it in force)."""
    contract = Contract(tenant=tenant, **{k: v for k, v in terms.items() if k in TERMS})
    contract_validate(contract=contract)
    with transaction.atomic(durable=True):
        contract.save()
    return contract


def contract_update(*, contract: Contract, terms: dict[str, Any]) -> Contract:
    """Change the terms (under the contract's lock, in the lock order: the account first); an
    active contract's are re-applied at once, after that transaction (contract_activate is
    durable)."""
    changed = [name for name in terms if name in TERMS]
    with transaction.atomic(durable=True):
        account_lock(tenant_id=contract.tenant_id)
        locked = contract_lock(tenant_id=contract.tenant_id, contract_id=contract.pk)
        if locked.status != Contract.Status.DRAFT:
            for name in LOCKED_WHEN_ACTIVE:
                if name in terms and terms[name] != getattr(locked, name):
                    raise InvalidContract(
                        "This term cannot change once the contract is active: its tranches "
                        "were sized and priced by it.",
                        field=name,
                    )
        for name in changed:
            setattr(locked, name, terms[name])
        contract_validate(contract=locked)
        locked.save(update_fields=changed)
    if locked.status == Contract.Status.ACTIVE:
        contract_activate(contract=locked)
    return locked
