"""Enterprise contracts: committed credits as `rolling_12m` buckets (up front or in monthly
tranches) bought at the contract's price per 1,000 credits, the contract's rate card assignment
and its overdraft limit."""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone

from billing.exceptions import InvalidContract
from billing.locks import contract_lock
from billing.models import Contract, Subscription
from billing.selectors import billing_currency_fixed
from billing.services.contract_invoices import (
    commitment_invoice_request,
    contract_overage_invoice,
)
from billing.services.tenant_billing import billing_currency_claim
from ledger.locks import account_lock
from ledger.models import CreditBucket
from ledger.periods import add_months
from ledger.services import credit_account_update, ledger_grant
from ratecards.exceptions import InvalidAssignment
from ratecards.models import RateCard, RateCardAssignment, RateCardVersion
from ratecards.services import assignment_validate, ratecard_assign

CREDIT_QUANTUM = Decimal("0.0001")
# Stripe's limit on days_until_due is far above this; a longer term is a typo.
MAX_NET_TERMS_DAYS = 365

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tranche:
    index: int
    at: datetime
    credits: Decimal
    price_minor: int


def contract_tranches(contract: Contract) -> list[Tranche]:
    """Every grant the contract makes: one up front, or one a month from the start (the last
    tranche takes the rounding remainder, so they sum to the committed credits exactly)."""
    if contract.grant_schedule == Contract.Schedule.UPFRONT:
        dates = [contract.start_at]
    else:
        dates = []
        while (at := add_months(contract.start_at, len(dates))) < contract.end_at:
            dates.append(at)
    each = (contract.committed_credits / len(dates)).quantize(CREDIT_QUANTUM, ROUND_DOWN)
    amounts = [each] * (len(dates) - 1) + [contract.committed_credits - each * (len(dates) - 1)]
    return [
        Tranche(
            index=i,
            at=at,
            credits=credits,
            price_minor=int(
                (credits * contract.price_per_1000_minor / 1000).to_integral_value(ROUND_HALF_UP)
            ),
        )
        for i, (at, credits) in enumerate(zip(dates, amounts, strict=True))
    ]


@dataclass(frozen=True)
class _Assignment:
    mode: str
    notice_days: int
    pinned_version: RateCardVersion | None
    pinned_until: datetime | None


def _assignment(contract: Contract) -> _Assignment:
    if contract.rate_card_mode == Contract.RateCardMode.PINNED:
        return _Assignment(
            RateCardAssignment.Mode.PINNED, 0, contract.pinned_version, contract.pinned_until
        )
    return _Assignment(RateCardAssignment.Mode.FOLLOW, contract.notice_days, None, None)


def contract_validate(*, contract: Contract) -> None:
    """Raises InvalidContract naming the field (the admin form shows it)."""
    if contract.end_at <= contract.start_at:
        raise InvalidContract("The contract must end after it starts.", field="end_at")
    if contract.committed_credits <= 0:
        raise InvalidContract("Committed credits must be positive.", field="committed_credits")
    tranches = contract_tranches(contract)
    if min(tranche.credits for tranche in tranches) <= 0:
        raise InvalidContract(
            f"{contract.committed_credits} credits cannot make {len(tranches)} monthly tranches: "
            f"each must be at least {CREDIT_QUANTUM}.",
            field="committed_credits",
        )
    if contract.price_per_1000_minor < 0:
        raise InvalidContract("The price cannot be negative.", field="price_per_1000_minor")
    if contract.overdraft_limit < 0:
        raise InvalidContract("The overdraft limit cannot be negative.", field="overdraft_limit")
    if contract.monthly_spending_cap_minor is not None and contract.monthly_spending_cap_minor < 0:
        raise InvalidContract(
            "The monthly spending cap cannot be negative (leave it empty for none).",
            field="monthly_spending_cap_minor",
        )
    if contract.net_terms_days > MAX_NET_TERMS_DAYS:
        raise InvalidContract(
            f"Net terms are at most {MAX_NET_TERMS_DAYS} days.", field="net_terms_days"
        )
    if (
        contract.overage_price_per_1000_minor is not None
        and contract.overage_price_per_1000_minor < 0
    ):
        raise InvalidContract(
            "The overage price cannot be negative.", field="overage_price_per_1000_minor"
        )
    if (
        contract.rate_card_mode == Contract.RateCardMode.PINNED
        and contract.pinned_until is not None
        and contract.pinned_until <= contract.start_at
    ):
        raise InvalidContract(
            "A pin must last past the contract's start: pinned until is before it.",
            field="pinned_until",
        )
    fixed = billing_currency_fixed(tenant_id=contract.tenant_id)
    if fixed is not None and contract.currency.upper() != fixed:
        raise InvalidContract(
            f"This tenant is billed in {fixed}: the contract must be too.", field="currency"
        )
    a = _assignment(contract)
    try:
        assignment_validate(
            rate_card=contract.rate_card,
            mode=a.mode,
            notice_days=a.notice_days,
            pinned_version=a.pinned_version,
            pinned_until=a.pinned_until,
        )
    except InvalidAssignment as exc:
        raise InvalidContract(exc.message, **exc.details) from None


def contract_activate(*, contract: Contract, now: datetime | None = None) -> Contract:
    """Put the contract in force (or re-apply an edited one): rate card assignment from its
    start, overdraft limit once it has started, and every tranche already due. A contract that
    starts later (a renewal) leaves the terms in force until its start_at; the rate card history
    takes the new card from then and contract_start_due applies the overdraft. Running it again
    grants nothing twice."""
    now = now or timezone.now()
    contract_validate(contract=contract)
    with transaction.atomic(durable=True):
        account_lock(tenant_id=contract.tenant_id)
        locked = contract_lock(tenant_id=contract.tenant_id, contract_id=contract.pk)
        fixed = billing_currency_claim(tenant_id=locked.tenant_id, currency=locked.currency)
        if fixed != locked.currency.upper():
            raise InvalidContract(
                f"This tenant is billed in {fixed}: the contract must be too.", field="currency"
            )
        a = _assignment(locked)
        ratecard_assign(
            tenant=locked.tenant,
            rate_card=locked.rate_card,
            mode=a.mode,
            notice_days=a.notice_days,
            pinned_version=a.pinned_version,
            pinned_until=a.pinned_until,
            valid_from=max(locked.start_at, now),
        )
        fields = []
        if locked.start_at <= now:
            credit_account_update(tenant=locked.tenant, overdraft_limit=locked.overdraft_limit)
            locked.terms_applied_at = now
            fields.append("terms_applied_at")
        if locked.status != Contract.Status.ACTIVE:
            locked.status = Contract.Status.ACTIVE
            locked.activated_at = now
            fields += ["status", "activated_at"]
        if fields:
            locked.save(update_fields=fields)
        _grant_due(locked, now)
    return locked


def _grant_due(contract: Contract, now: datetime) -> int:
    """Every tranche due by `now`: its invoice requested (from the period invoicing starts
    with) and, on signature terms or before invoicing, its credits granted; on payment terms
    they come when the invoice is paid (contract_invoices.py). The overdraft of the months that
    ended is invoiced first, so the next tranche does not repay what is invoiced."""
    contract_overage_invoice(contract, now=now)
    tranches = contract_tranches(contract)
    granted = 0
    for tranche in tranches:
        if tranche.at > now:
            break
        following = tranche.index + 1
        commitment_invoice_request(
            contract,
            index=tranche.index,
            credits=tranche.credits,
            price_minor=tranche.price_minor,
            start=tranche.at,
            end=tranches[following].at if following < len(tranches) else contract.end_at,
            count=len(tranches),
            now=now,
        )
        on_payment = contract.credits_on == Contract.CreditsOn.PAYMENT
        if on_payment and tranche.index >= contract.invoicing_from_period:
            continue
        result = ledger_grant(
            tenant=contract.tenant,
            credits=tranche.credits,
            policy=CreditBucket.Policy.ROLLING_12M,
            source=CreditBucket.Source.CONTRACT,
            external_reference=f"contract:{contract.pk}:{tranche.index}",
            granted_at=tranche.at,
            price_minor=tranche.price_minor,
            currency=contract.currency,
            source_type="billing.contract",
            source_id=str(contract.pk),
            memo=f"{contract.name}: tranche {tranche.index + 1}",
        )
        granted += result.created
    return granted


def contract_tranches_due(*, now: datetime | None = None) -> int:
    """The monthly-tranche sweep (Celery beat); safe to run twice: grants are idempotent."""
    now = now or timezone.now()
    granted = 0
    active = Contract.objects.filter(status=Contract.Status.ACTIVE, start_at__lte=now)
    for pk, tenant_id in active.values_list("pk", "tenant_id"):
        try:
            with transaction.atomic(durable=True):
                account_lock(tenant_id=tenant_id)
                contract = contract_lock(tenant_id=tenant_id, contract_id=pk)
                if contract.status == Contract.Status.ACTIVE:
                    granted += _grant_due(contract, now)
        except Exception:
            # One contract that cannot be granted (an edited row) must not starve the others.
            logger.exception("contract %s: tranche grant failed", pk)
    return granted


def contract_end_due(*, now: datetime | None = None) -> int:
    """The contract-end sweep (Celery beat, hourly): a contract past its end_at ends, its
    overdraft goes back to 0 and the tenant goes back to its plan's rate card (or the default
    card). Tranches due before end_at are granted first. Returns how many contracts it ended;
    safe to run twice."""
    now = now or timezone.now()
    due = Contract.objects.filter(status=Contract.Status.ACTIVE, end_at__lte=now)
    ended = 0
    for pk, tenant_id in due.values_list("pk", "tenant_id"):
        try:
            ended += _end_one(pk, tenant_id, now)
        except Exception:
            # One contract that cannot be ended (an edited row) must not keep the others in force.
            logger.exception("contract %s: ending failed", pk)
    return ended


def _end_one(pk: int, tenant_id: int, now: datetime) -> bool:
    with transaction.atomic(durable=True):
        account_lock(tenant_id=tenant_id)
        contract = contract_lock(tenant_id=tenant_id, contract_id=pk)
        if contract.status != Contract.Status.ACTIVE or contract.end_at > now:
            return False
        successor = (
            Contract.objects.filter(
                tenant_id=tenant_id, status=Contract.Status.ACTIVE, end_at__gt=now
            )
            .exclude(pk=pk)
            .exists()
        )
        # What the overdraft still owes is invoiced and cleared (all of it, unless a renewal
        # takes the overdraft on), so the tenant's next purchase is spendable in full.
        contract_overage_invoice(contract, now=max(now, contract.end_at), final=not successor)
        # Both sweeps run hourly in no set order: a tranche due before end_at that the tranche
        # sweep has not granted yet would never be granted once the contract ends.
        _grant_due(contract, min(now, contract.end_at))
        contract.status = Contract.Status.ENDED
        contract.save(update_fields=["status"])
        if successor:
            # The contract in force keeps its own terms; a renewal that starts after a gap
            # already holds its card from start_at and contract_start_due applies its overdraft
            # then, so the ending contract's terms run on through the gap.
            return True
        credit_account_update(tenant=contract.tenant, overdraft_limit=Decimal(0))
        card = _plan_rate_card(tenant_id)
        if card is not None:
            ratecard_assign(
                tenant=contract.tenant, rate_card=card, mode=RateCardAssignment.Mode.FOLLOW
            )
    return True


def contract_start_due(*, now: datetime | None = None) -> int:
    """The contract-start step of the hourly sweep: an active contract whose start_at has passed
    but whose overdraft limit was not applied yet (activated before it started) gets it now.
    Returns how many it applied; safe to run twice (terms_applied_at marks the ones done, so an
    overdraft changed later through the API is not overwritten every hour)."""
    now = now or timezone.now()
    due = Contract.objects.filter(
        status=Contract.Status.ACTIVE,
        terms_applied_at__isnull=True,
        start_at__lte=now,
        end_at__gt=now,
    )
    applied = 0
    for pk, tenant_id in due.values_list("pk", "tenant_id"):
        try:
            with transaction.atomic(durable=True):
                account_lock(tenant_id=tenant_id)
                contract = contract_lock(tenant_id=tenant_id, contract_id=pk)
                if (
                    contract.status != Contract.Status.ACTIVE
                    or contract.terms_applied_at is not None
                    or contract.start_at > now
                    or contract.end_at <= now
                ):
                    continue
                credit_account_update(
                    tenant=contract.tenant, overdraft_limit=contract.overdraft_limit
                )
                contract.terms_applied_at = now
                contract.save(update_fields=["terms_applied_at"])
                applied += 1
        except Exception:
            logger.exception("contract %s: applying its terms at start failed", pk)
    return applied


def _plan_rate_card(tenant_id: int) -> RateCard | None:
    sub = (
        Subscription.objects.select_related("plan__rate_card")
        .filter(tenant_id=tenant_id, status=Subscription.Status.ACTIVE)
        .first()
    )
    if sub is not None and sub.plan.rate_card is not None:
        return sub.plan.rate_card
    return RateCard.objects.filter(is_default=True).first()
