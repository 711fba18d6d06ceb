"""Low-balance alerts, once per crossing, and the watch level that keeps the debit path quiet.

"Remaining" is available ÷ granted over the tenant's unexpired buckets. A threshold (percent,
from the ledger's CreditAccount.alert_thresholds; 0 stands for "exhausted") fires when the
balance is under it and it is armed, and is re-armed when the balance is back at or above it
(a grant, a refund). The evaluation runs under the tenant's account lock, so two evaluations
racing after two debits see the same state one after the other and fire once.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing.models import AlertState, AutoTopUpPolicy, TopUp
from billing.services.autotopup import StartOutcome, auto_topup_refusal, auto_topup_start
from billing.services.notify import notify
from ledger.locks import account_lock
from ledger.models import EntryKind, LedgerEntry
from ledger.selectors import balance_get
from ledger.services import credit_account_update
from tenants.models import Tenant
from tenants.outbox import outbox_claim

EXHAUSTED = 0


@dataclass(frozen=True)
class Evaluation:
    available: Decimal
    granted: Decimal
    fired: list[int]
    rearmed: list[int]
    watch_level: Decimal
    auto_top_up: StartOutcome | None


def _level(granted: Decimal, threshold: int) -> Decimal:
    return (granted * threshold / 100).quantize(Decimal("0.0001"))


def balance_evaluate(*, tenant: Tenant, now: datetime | None = None) -> Evaluation:
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        account = account_lock(tenant_id=tenant.pk)
        balance = balance_get(tenant=tenant, at=now)
        available, granted = balance.available, balance.granted_unexpired
        states = {s.threshold: s for s in AlertState.objects.filter(tenant=tenant)}
        fired, rearmed = [], []
        armed_levels: list[Decimal] = []
        for threshold in [*sorted(account.alert_thresholds, reverse=True), EXHAUSTED]:
            level = _level(granted, threshold)
            under = available <= 0 if threshold == EXHAUSTED else available < level
            state = states.get(threshold) or AlertState(tenant=tenant, threshold=threshold)
            if under and state.state == AlertState.State.ARMED:
                state.state, state.fired_at = AlertState.State.FIRED, now
                state.save()
                fired.append(threshold)
                _announce(tenant, threshold, available, granted, level)
            elif not under and state.state == AlertState.State.FIRED:
                state.state = AlertState.State.ARMED
                state.save()
                rearmed.append(threshold)
            elif state._state.adding:
                state.save()
            if state.state == AlertState.State.ARMED:
                armed_levels.append(level if threshold != EXHAUSTED else Decimal("0.0001"))
        policy = AutoTopUpPolicy.objects.filter(tenant=tenant).first()
        if policy is not None and _auto_topup_may_start(policy, now):
            armed_levels.append(policy.threshold)
        watch = max(armed_levels, default=Decimal(0))
        credit_account_update(tenant=tenant, watch_level=watch)
    outcome = None
    if policy is not None and not auto_topup_refusal(policy, now) and available < policy.threshold:
        outcome = auto_topup_start(tenant=tenant, now=now)
    return Evaluation(available, granted, fired, rearmed, watch, outcome)


def _auto_topup_may_start(policy: AutoTopUpPolicy, now: datetime) -> bool:
    """Whether a debit under the threshold could start a top-up now: if not (one in flight,
    backing off, capped this month), debits need not wake the evaluation for it; the top-up's
    outcome and the periodic sweep re-evaluate."""
    if auto_topup_refusal(policy, now) or policy.capped_month == now.strftime("%Y-%m"):
        return False
    return not TopUp.objects.filter(
        tenant_id=policy.tenant_id, auto=True, status=TopUp.Status.PENDING
    ).exists()


def _announce(
    tenant: Tenant, threshold: int, available: Decimal, granted: Decimal, level: Decimal
) -> None:
    if threshold == EXHAUSTED:
        notify(
            tenant_id=tenant.pk,
            type="balance.exhausted",
            data={"available": str(available), "granted": str(granted)},
            subject="Your credits are used up",
            body=(
                f"{tenant.name} has no credits left ({available} available). Usage will be "
                "refused until you top up."
            ),
        )
        return
    notify(
        tenant_id=tenant.pk,
        type="balance.low",
        data={
            "threshold_percent": threshold,
            "threshold_credits": str(level),
            "available": str(available),
            "granted": str(granted),
        },
        subject=f"Under {threshold}% of your credits left",
        body=(
            f"{tenant.name} has {available} of {granted} credits left, under {threshold}%. "
            "Top up or turn on auto top-up to keep your agents running."
        ),
    )


def credits_expired_notify(*, tenant: Tenant, at: datetime, outbox_id: int | None = None) -> None:
    """Announce what the expiry sweep that ran at `at` took from the tenant (once per outbox
    message that asked for it)."""
    with transaction.atomic():
        if outbox_id is None or outbox_claim(outbox_id):
            _expired_announce(tenant=tenant, at=at)


def _expired_announce(*, tenant: Tenant, at: datetime) -> None:
    amount = -(
        LedgerEntry.objects.filter(tenant=tenant, kind=EntryKind.EXPIRY, created_at=at).aggregate(
            total=Sum("amount")
        )["total"]
        or Decimal(0)
    )
    if amount <= 0:
        return
    notify(
        tenant_id=tenant.pk,
        type="credits.expired",
        data={"credits": str(amount), "expired_at": at.isoformat()},
        subject=f"{amount} credits expired",
        body=f"{amount} unused credits of {tenant.name} reached their expiry date.",
    )
