"""Staff moves of a customer's money and terms from the console: each needs its Django
permission (checked here, not only in the view, so no other caller skips it), goes through the
owning app's one service, and is logged with the user and the reason: a line on the
`insights.staff` logger and an entry in the admin's history of the record it changed.

| action | permission | service |
|---|---|---|
| grant credits | `ledger.grant_credits` | `ledger_grant` (source promotion) |
| adjust credits | `ledger.adjust_credits` | `ledger_adjust` |
| refund a usage event | `ledger.adjust_credits` | `usage_event_refund` (`ledger_reverse`) |
| create a contract | `billing.add_contract` | `contract_create` (and `contract_activate`) |
| edit a contract | `billing.change_contract` | `contract_update` |
| add an exchange rate | `insights.add_exchangerate` | `staff_exchange_rate_add` (below) |
"""

import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from billing.models import Contract
from billing.services.contract_terms import contract_create, contract_update
from billing.services.contracts import contract_activate
from insights.models import ExchangeRate
from ledger.models import CreditAccount, CreditBucket, LedgerTransaction
from ledger.services import GrantResult, ledger_adjust, ledger_grant
from metering.services import usage_event_refund
from tenants.exceptions import CreditlineError
from tenants.models import Tenant

logger = logging.getLogger("insights.staff")

GRANT_PERMISSION = "ledger.grant_credits"
ADJUST_PERMISSION = "ledger.adjust_credits"


def permission_check(*, user: User, permission: str) -> None:
    """PermissionDenied unless the staff user holds `permission` (a superuser holds all)."""
    if not (user.is_active and user.is_staff and user.has_perm(permission)):
        raise PermissionDenied(f"This needs the permission {permission}.")


def staff_log(*, user: User, obj: Model, flag: int, message: str) -> None:
    """One line on the staff logger and one in the admin's history of `obj`."""
    logger.info("staff %s (%s) %s: %s", user.get_username(), user.pk, obj._meta.label, message)
    LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=flag,
        change_message=message,
    )


def _account(tenant: Tenant) -> CreditAccount:
    # Every money move made the row (the ledger's _open_book); it exists after the move.
    return CreditAccount.objects.get(tenant=tenant)


def staff_credits_grant(
    *,
    user: User,
    tenant: Tenant,
    credits: Decimal,
    policy: str,
    reason: str,
    token: str,
    expires_at: datetime | None = None,
) -> GrantResult:
    """Free credits (cost basis 0, source promotion) granted by a staff user. `token` comes
    from the rendered form, so a form submitted twice grants once."""
    permission_check(user=user, permission=GRANT_PERMISSION)
    result = ledger_grant(
        tenant=tenant,
        credits=credits,
        policy=policy,
        source=CreditBucket.Source.PROMOTION,
        external_reference=f"console:{token}",
        expires_at=expires_at if policy == CreditBucket.Policy.MONTHLY_RESET else None,
        actor=user,
        memo=reason,
        source_type="console",
    )
    if result.created:
        staff_log(
            user=user,
            obj=_account(tenant),
            flag=ADDITION,
            message=f"granted {result.bucket.granted} credits ({policy}): {reason}",
        )
    return result


def staff_credits_adjust(
    *, user: User, tenant: Tenant, credits: Decimal, reason: str, token: str
) -> LedgerTransaction:
    """A signed correction by a staff user (negative: refused whole if not available)."""
    permission_check(user=user, permission=ADJUST_PERMISSION)
    key = f"console-adjust:{token}"
    already = LedgerTransaction.objects.filter(tenant=tenant, idempotency_key=key).exists()
    tx = ledger_adjust(
        tenant=tenant, credits=credits, reason=reason, actor=user, idempotency_key=key
    )
    if not already:  # a replayed form logs nothing twice (the ledger wrote nothing twice)
        staff_log(
            user=user,
            obj=_account(tenant),
            flag=CHANGE,
            message=f"adjusted by {credits} credits: {reason}",
        )
    return tx


# A refund is a correction of the balance bounded by what the event charged: whoever may adjust
# a customer's credits by any amount may give back a charge, so it takes the same permission.
REFUND_PERMISSION = ADJUST_PERMISSION


def staff_usage_refund(
    *,
    user: User,
    tenant: Tenant,
    idempotency_key: str,
    credits: Decimal | None,
    reason: str,
    token: str,
) -> LedgerTransaction:
    """A usage event's debit given back (`credits`, or all that is left when None) by a staff
    user. `token` comes from the rendered form, so a form submitted twice refunds once."""
    permission_check(user=user, permission=REFUND_PERMISSION)
    key = f"console-refund:{token}"
    already = LedgerTransaction.objects.filter(tenant=tenant, idempotency_key=key).exists()
    tx = usage_event_refund(
        tenant=tenant,
        idempotency_key=idempotency_key,
        amount=credits,
        actor=user,
        reason=reason,
        refund_key=key,
    )
    if not already:  # a replayed form logs nothing twice (the ledger wrote nothing twice)
        staff_log(
            user=user,
            obj=_account(tenant),
            flag=CHANGE,
            message=f"refunded {tx.amount:.4f} credits of usage event {idempotency_key}: {reason}",
        )
    return tx


CONTRACT_ADD_PERMISSION = "billing.add_contract"
CONTRACT_CHANGE_PERMISSION = "billing.change_contract"


def staff_contract_create(
    *, user: User, tenant: Tenant, terms: dict[str, Any], activate: bool, reason: str
) -> Contract:
    """A contract made by a staff user (a draft, or put in force at once)."""
    permission_check(user=user, permission=CONTRACT_ADD_PERMISSION)
    contract = contract_create(tenant=tenant, terms=terms)
    if activate:
        contract = contract_activate(contract=contract)
    staff_log(
        user=user,
        obj=contract,
        flag=ADDITION,
        message=f"created contract for {tenant.slug}"
        f"{' and activated it' if activate else ''}: {reason}",
    )
    return contract


def staff_contract_update(
    *, user: User, contract: Contract, terms: dict[str, Any], reason: str, activate: bool = False
) -> Contract:
    """A contract's terms changed by a staff user, and a draft put in force if `activate`; the
    log names the terms that changed."""
    permission_check(user=user, permission=CONTRACT_CHANGE_PERMISSION)
    changed = sorted(n for n, v in terms.items() if getattr(contract, n) != v)
    contract = contract_update(contract=contract, terms=terms)
    activated = activate and contract.status == Contract.Status.DRAFT
    if activated:
        contract = contract_activate(contract=contract)
    staff_log(
        user=user,
        obj=contract,
        flag=CHANGE,
        message=f"changed {', '.join(changed) or 'nothing'}"
        f"{' and activated it' if activated else ''}: {reason}",
    )
    return contract


EXCHANGE_RATE_ADD_PERMISSION = "insights.add_exchangerate"


class ExchangeRateExists(CreditlineError):
    status_code = 409
    code = "exchange_rate_exists"
    message = "This pair already has a rate on that day: correct it in the admin."


def staff_exchange_rate_add(
    *,
    user: User,
    from_currency: str,
    to_currency: str,
    rate: Decimal,
    effective_on: date,
    source: str,
) -> ExchangeRate:
    """A rate of the vendor's exchange-rate table (insights/fx.py reads it), added by a staff
    user; `source` says where the figure comes from and is the log's reason. One per pair and
    day (the table's unique constraint decides, so two submissions at once add one)."""
    permission_check(user=user, permission=EXCHANGE_RATE_ADD_PERMISSION)
    try:
        with transaction.atomic():
            added = ExchangeRate.objects.create(
                from_currency=from_currency,
                to_currency=to_currency,
                rate=rate,
                effective_on=effective_on,
                source=source,
                created_by=user,
                created_at=timezone.now(),
            )
    except IntegrityError as error:
        if "exchangerate_pair_day_uniq" not in str(error):
            raise
        raise ExchangeRateExists from error
    staff_log(user=user, obj=added, flag=ADDITION, message=f"added {added}: {source}")
    return added
