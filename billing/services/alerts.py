"""Low-balance alerts, once per crossing, and the watch level that keeps the debit path quiet.

"Remaining" is measured against what the tenant was last topped up to (the ledger account's
`topped_up_to`: the available balance right after its latest grant, raised by refunds; README,
"Soft cap and low-balance alerts"). A threshold (percent, from the tenant's AlertSettings; 0
stands for "exhausted") fires when the available balance is under that share of it and it is
armed, and is re-armed when the balance is back at or above it (a grant, a refund). The
evaluation runs under the tenant's account lock, so two evaluations racing after two debits
see the same state one after the other and fire once.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing import task_names
from billing.exceptions import InvalidAlertThresholds
from billing.models import AlertSettings, AlertState, AutoTopUpPolicy, TopUp
from billing.selectors import alert_thresholds_get
from billing.services.autotopup import StartOutcome, auto_topup_refusal, auto_topup_start
from billing.services.notify import notify
from ledger.locks import account_lock
from ledger.models import EntryKind, LedgerEntry
from ledger.selectors import available_get, credit_account_get
from ledger.services import credit_account_update, quantize_credits
from tenants.models import Tenant
from tenants.outbox import outbox_claim, outbox_enqueue

EXHAUSTED = 0


@dataclass(frozen=True)
class Evaluation:
    available: Decimal
    topped_up_to: Decimal
    fired: list[int]
    rearmed: list[int]
    watch_level: Decimal
    auto_top_up: StartOutcome | None


def alert_level(*, topped_up_to: Decimal, threshold: int) -> Decimal:
    """The balance under which a threshold of `threshold` percent fires, in credits."""
    return quantize_credits(topped_up_to * threshold / 100)


def alert_settings_update(*, tenant: Tenant, thresholds: Iterable[int]) -> AlertSettings:
    """Set the tenant's thresholds (percent, 1 to 99; duplicates dropped, highest first) and,
    once it has been topped up, evaluate its balance against them: one it is already under
    fires now rather than at the next crossing, and the watch level follows. (A tenant that
    was never topped up has nothing to evaluate: it would only hear that it has no credits.)"""
    chosen = sorted({int(t) for t in thresholds}, reverse=True)
    if any(t < 1 or t > 99 for t in chosen):
        raise InvalidAlertThresholds(fields={"alert_thresholds": [InvalidAlertThresholds.message]})
    with transaction.atomic():
        settings, _ = AlertSettings.objects.update_or_create(
            tenant=tenant, defaults={"thresholds": chosen}
        )
        if credit_account_get(tenant=tenant).topped_up_to > 0:
            outbox_enqueue(task_names.BALANCE_EVALUATE, {"tenant_id": tenant.pk})
    return settings


def balance_evaluate(*, tenant: Tenant, now: datetime | None = None) -> Evaluation:
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        account = account_lock(tenant_id=tenant.pk)
        available, base = available_get(tenant=tenant, at=now), account.topped_up_to
        states = {s.threshold: s for s in AlertState.objects.filter(tenant=tenant)}
        fired, rearmed = [], []
        armed_levels: list[Decimal] = []
        for threshold in [*alert_thresholds_get(tenant_id=tenant.pk), EXHAUSTED]:
            level = alert_level(topped_up_to=base, threshold=threshold)
            under = available <= 0 if threshold == EXHAUSTED else available < level
            state = states.get(threshold) or AlertState(tenant=tenant, threshold=threshold)
            if under and state.state == AlertState.State.ARMED:
                state.state, state.fired_at = AlertState.State.FIRED, now
                state.save()
                fired.append(threshold)
                _announce(tenant, threshold, available, base, level)
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
    return Evaluation(available, base, fired, rearmed, watch, outcome)


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
    tenant: Tenant, threshold: int, available: Decimal, base: Decimal, level: Decimal
) -> None:
    # `granted` is `topped_up_to` under its old name, kept one release (README, "API changes").
    amounts = {"available": str(available), "topped_up_to": str(base), "granted": str(base)}
    if threshold == EXHAUSTED:
        notify(
            tenant_id=tenant.pk,
            type="balance.exhausted",
            data=amounts,
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
        data={"threshold_percent": threshold, "threshold_credits": str(level), **amounts},
        subject=f"Under {threshold}% of your credits left",
        body=(
            f"{tenant.name} has {available} of {base} credits left, under {threshold}%. "
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
