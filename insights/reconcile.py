"""Reconciliation: the money received agrees with what the ledger says it bought, per currency,
to the cent; the console's rollups agree with the ledger, credits to 0.0001.

Every paid credit is in a bucket with a cost basis (price / credits). Multiply the ledger's
invariant 3 (a bucket's remaining is the sum of its entries) by it and sum over buckets:

    granted value = revenue + breakage + unspent value + taken back + written off

where revenue is spent less refunded usage plus overdrafts repaid by a grant (credits x
cost basis), breakage is what expired, taken back is what left a refunded or disputed grant,
written off is a staff adjustment down. Billing's records say what that granted value was
paid: top-ups and invoices, less refunds; contract credits granted at signature are owed
until their invoice is paid (receivable), and a contract's overdraft is invoiced in arrears
(paid money for credits already spent, at a cost basis of 0: revenue at payment). So:

    received - refunded = revenue + overdraft invoiced and paid - refunds of spent credits
                          + breakage + unspent value + written off - receivable

(the refunds of spent credits: what a refund paid back beyond the value it took back, the
customer's debt). The ledger's side is read from the ledger itself (entries and buckets),
billing's from billing's rows, so a grant without a payment, a payment without a grant or an
entry at the wrong cost basis shows as a difference. Then the rollups are checked against the
same ledger: ValueDay's credits and money per currency and movement, MarginDay's credits per
tenant against the usage debits and refunds (to 0.0001), and the rollups summed from MarginDay
that the pages across tenants read against MarginDay (exactly).

Each run is kept (ReconciliationRun: when, how long, both sides per currency, the differences
found): the hourly task and `manage.py reconcile` store theirs, and a staff user with
`insights.add_reconciliationrun` may ask for one, which the same task runs (outbox). The
console's page shows the last stored run; reconciling reads every ledger entry and rollup
row, too much for a page."""

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.admin.models import ADDITION
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing.models import ContractInvoice, SubscriptionInvoice, TopUp
from insights.models import (
    MarginDay,
    MarginSums,
    MarginTotalDay,
    ReconciliationRun,
    TenantMarginDay,
    TenantMarginMonth,
    ValueDay,
)
from insights.rollup import insights_rollup_update
from insights.staff_actions import permission_check, staff_log
from metering.usage.record import LEDGER_SOURCE
from tenants.outbox import outbox_enqueue

logger = logging.getLogger("insights.reconcile")

ZERO = Decimal("0")
CENT = Decimal("1")
CREDIT = Decimal("0.0001")
Money = dict[str, Decimal]

# Every entry on a bucket, by movement (as the rollup names them), with its money.
_LEDGER_VALUES = """
SELECT b.currency,
       CASE en.kind
            WHEN 'debit' THEN 'spend'
            WHEN 'reversal' THEN CASE WHEN rv.kind = 'grant' THEN 'revocation' ELSE 'refund' END
            ELSE en.kind
       END AS movement,
       sum(en.amount), sum(en.amount * b.cost_basis_minor)
  FROM ledger_ledgerentry en
  JOIN ledger_creditbucket b ON b.id = en.bucket_id
  JOIN ledger_ledgertransaction t ON t.id = en.transaction_id
  LEFT JOIN ledger_ledgertransaction rv ON rv.id = t.reverses_id
 WHERE en.kind NOT IN ('hold', 'release')
 GROUP BY 1, 2
"""

_UNSPENT = """
SELECT currency, sum(remaining * cost_basis_minor) FROM ledger_creditbucket
 WHERE unspent GROUP BY 1
"""

# Contract credits granted before their commitment invoice was paid (`contract:<id>:<tranche>`).
_RECEIVABLE = """
SELECT b.currency, sum(b.price_minor) FROM ledger_creditbucket b
 WHERE b.source = 'contract' AND b.price_minor > 0 AND NOT EXISTS (
       SELECT 1 FROM billing_contractinvoice i
        WHERE i.tenant_id = b.tenant_id AND i.kind = 'commitment' AND i.status = 'paid'
          AND b.external_reference = 'contract:' || i.contract_id || ':' || i.period_index)
 GROUP BY 1
"""

# Usage debits less their refunds per tenant, as the ledger has them.
_USAGE_CREDITS = """
SELECT t.tenant_id, -sum(t.amount) FROM ledger_ledgertransaction t
 WHERE t.source_type = %s AND t.kind IN ('debit', 'reversal')
 GROUP BY 1
"""


@dataclass
class CurrencyBalance:
    """Both sides of the money identity for one currency (minor units, unrounded)."""

    currency: str
    received: Decimal = ZERO
    refunded: Decimal = ZERO
    revenue: Decimal = ZERO
    overdraft_paid: Decimal = ZERO
    refunded_spent: Decimal = ZERO
    breakage: Decimal = ZERO
    unspent: Decimal = ZERO
    written_off: Decimal = ZERO
    receivable: Decimal = ZERO

    @property
    def left(self) -> Decimal:
        return self.received - self.refunded

    @property
    def right(self) -> Decimal:
        return (
            self.revenue
            + self.overdraft_paid
            - self.refunded_spent
            + self.breakage
            + self.unspent
            + self.written_off
            - self.receivable
        )

    @property
    def difference(self) -> Decimal:
        """Left less right, to the minor unit (half a cent either way is agreement)."""
        return (self.left - self.right).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class Reconciliation:
    currencies: list[CurrencyBalance]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _rows(sql: str, params: list[str] | None = None) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return list(cursor.fetchall())


def _billing(balances: dict[str, CurrencyBalance]) -> None:
    def add(rows: Iterable[Any], attr: str) -> None:
        for row in rows:
            b = balances.setdefault(row["currency"], CurrencyBalance(row["currency"]))
            setattr(b, attr, getattr(b, attr) + Decimal(row["total"] or 0))

    topups = TopUp.objects.filter(status=TopUp.Status.SUCCEEDED).values("currency")
    add(topups.annotate(total=Sum("amount_minor")), "received")
    add(topups.annotate(total=Sum("refunded_minor")), "refunded")
    paid_subs = SubscriptionInvoice.objects.filter(status=SubscriptionInvoice.Status.PAID)
    add(paid_subs.values("currency").annotate(total=Sum("amount_minor")), "received")
    paid = ContractInvoice.objects.filter(status=ContractInvoice.Status.PAID)
    add(paid.values("currency").annotate(total=Sum("amount_minor")), "received")
    overage = paid.filter(kind=ContractInvoice.Kind.OVERAGE).values("currency")
    add(overage.annotate(total=Sum("amount_minor")), "overdraft_paid")


def _ledger(balances: dict[str, CurrencyBalance]) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    moved: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    for currency, movement, credits, money in _rows(_LEDGER_VALUES):
        moved[(str(currency), str(movement))] = (Decimal(str(credits)), Decimal(str(money)))
    value: dict[str, Money] = defaultdict(dict)
    for (currency, movement), (_, money) in moved.items():
        value[currency][movement] = money
    for currency, by in value.items():
        b = balances.setdefault(currency, CurrencyBalance(currency))
        b.revenue = -(by.get("spend", ZERO) + by.get("refund", ZERO) + by.get("settlement", ZERO))
        b.breakage = -by.get("expiry", ZERO)
        b.written_off = -by.get("adjustment", ZERO)
        # What a refund paid back beyond the value it took out of the balance.
        taken_back = -by.get("revocation", ZERO)
        b.refunded_spent = b.refunded - taken_back
    for currency, money in _rows(_UNSPENT):
        balances.setdefault(str(currency), CurrencyBalance(str(currency))).unspent = Decimal(
            str(money)
        )
    for currency, money in _rows(_RECEIVABLE):
        balances.setdefault(str(currency), CurrencyBalance(str(currency))).receivable = Decimal(
            str(money)
        )
    return moved


def _rollups(moved: dict[tuple[str, str], tuple[Decimal, Decimal]], problems: list[str]) -> None:
    rolled = {
        (r["currency"], r["movement"]): (r["credits_sum"], r["money"])
        for r in ValueDay.objects.values("currency", "movement").annotate(
            credits_sum=Sum("credits"), money=Sum("value_minor")
        )
    }
    for key in sorted(set(moved) | set(rolled)):
        credits, money = moved.get(key, (ZERO, ZERO))
        r_credits, r_money = rolled.get(key, (ZERO, ZERO))
        if abs(credits - r_credits) >= CREDIT or abs(money - r_money) >= CENT / 2:
            problems.append(
                f"rollup {key[1]} in {key[0]}: ledger {credits:.4f} credits / {money:.8f} "
                f"minor, rollup {r_credits:.4f} / {r_money:.8f}"
            )
    usage = {int(str(t)): Decimal(str(c)) for t, c in _rows(_USAGE_CREDITS, [LEDGER_SOURCE])}
    margin = dict(
        MarginDay.objects.values("tenant_id")
        .annotate(c=Sum("credits"))
        .values_list("tenant_id", "c")
    )
    for tenant_id in sorted(set(usage) | set(margin)):
        ledger_credits, rolled_credits = usage.get(tenant_id, ZERO), margin.get(tenant_id, ZERO)
        if abs(ledger_credits - rolled_credits) >= CREDIT:
            problems.append(
                f"margin rollup of tenant {tenant_id}: ledger {ledger_credits} credits spent on "
                f"usage, rollup {rolled_credits}"
            )


# The figures the summed rollups carry, each compared with MarginDay's exactly (they are sums of
# the same unrounded rows).
_SUMMED = ("events", "credits", "revenue_minor", "cogs_minor", "events_without_cost")


def _summed_rollups(problems: list[str]) -> None:
    """The rollups the console's pages read across tenants (MarginTotalDay, TenantMarginDay,
    TenantMarginMonth) each equal MarginDay summed, per currency pair: a fold that reached
    MarginDay but not one of them would show wrong figures on those pages only."""

    def totals(model: type[MarginSums]) -> dict[tuple[str, str], tuple[Decimal, ...]]:
        rows = model._default_manager.values("currency", "cogs_currency").annotate(
            **{f"total_{name}": Sum(name) for name in _SUMMED}
        )
        found: dict[tuple[str, str], tuple[Decimal, ...]] = {}
        for row in rows:
            r: dict[str, Any] = dict(row)
            pair = (r["currency"], r["cogs_currency"])
            found[pair] = tuple(Decimal(r[f"total_{n}"] or 0) for n in _SUMMED)
        return found

    days = totals(MarginDay)
    for model in (MarginTotalDay, TenantMarginDay, TenantMarginMonth):
        summed = totals(model)
        none = (ZERO,) * len(_SUMMED)
        for pair in sorted(set(days) | set(summed)):
            differ = [
                f"{name} {got}, MarginDay {want}"
                for name, got, want in zip(
                    _SUMMED, summed.get(pair, none), days.get(pair, none), strict=True
                )
                if got != want
            ]
            if differ:
                problems.append(f"{model.__name__} in {pair[0]}/{pair[1]}: {'; '.join(differ)}")


def reconcile() -> Reconciliation:
    """Read both sides and compare; every difference is a problem (logged at ERROR). Reads
    the rollups as they are: run the rollup job first for an up-to-date comparison."""
    balances: dict[str, CurrencyBalance] = {}
    _billing(balances)
    moved = _ledger(balances)
    result = Reconciliation(currencies=[balances[c] for c in sorted(balances)])
    for b in result.currencies:
        if b.difference:
            result.problems.append(
                f"{b.currency}: received less refunds {b.left:.8f} minor units, the ledger "
                f"accounts for {b.right:.8f} (difference {b.difference})"
            )
    _rollups(moved, result.problems)
    _summed_rollups(result.problems)
    for problem in result.problems:
        logger.error("reconciliation: %s", problem)
    return result


RUN_TASK = "insights.reconcile"
RUN_PERMISSION = "insights.add_reconciliationrun"
# Finished runs are kept this long (the hourly task stores 24 a day).
KEEP_RUNS = timedelta(days=90)
_FIGURES = [f.name for f in fields(CurrencyBalance) if f.name != "currency"]


def currency_balances_from_json(rows: list[dict[str, str]]) -> list[CurrencyBalance]:
    """A stored run's figures as they were computed (ReconciliationRun.currencies)."""
    return [
        CurrencyBalance(row["currency"], **{name: Decimal(row[name]) for name in _FIGURES})
        for row in rows
    ]


def _as_json(b: CurrencyBalance) -> dict[str, str]:
    return {"currency": b.currency, **{name: str(getattr(b, name)) for name in _FIGURES}}


def reconciliation_request(*, user: User) -> ReconciliationRun:
    """A staff user asks for a run now: a waiting row and the task's outbox message in one
    transaction (the task runs it, as it runs the hourly one); logged like every staff move."""
    permission_check(user=user, permission=RUN_PERMISSION)
    with transaction.atomic():
        run = ReconciliationRun.objects.create(
            trigger=ReconciliationRun.Trigger.STAFF, requested_by=user, requested_at=timezone.now()
        )
        outbox_enqueue(RUN_TASK, {"run_id": run.pk})
        staff_log(user=user, obj=run, flag=ADDITION, message="asked for a reconciliation run")
    return run


# A run still marked running after this was left by a worker that died.
ABANDONED = timedelta(minutes=15)


def reconciliation_run(
    *, trigger: str, run_id: int | None = None, update_rollups: bool = True
) -> tuple[ReconciliationRun, Reconciliation | None]:
    """One run, stored: the rollups brought up to date (unless `update_rollups` is False), then
    `reconcile()` (each difference logged at ERROR). `run_id` names a waiting run (a staff
    request); a run already finished is left alone (None: nothing was computed). A run that
    raises is stored as failed, with the error's type, and returns None."""
    now = timezone.now()
    if run_id is None:
        run = ReconciliationRun.objects.create(
            trigger=trigger,
            status=ReconciliationRun.Status.RUNNING,
            requested_at=now,
            started_at=now,
        )
    else:
        # A waiting run, or one whose worker died (running for longer than any run takes: the
        # task comes back after its visibility timeout); not one another worker is running.
        waiting = Q(status=ReconciliationRun.Status.PENDING)
        abandoned = Q(status=ReconciliationRun.Status.RUNNING, started_at__lt=now - ABANDONED)
        claimed = ReconciliationRun.objects.filter(waiting | abandoned, pk=run_id).update(
            status=ReconciliationRun.Status.RUNNING, started_at=now
        )
        run = ReconciliationRun.objects.get(pk=run_id)
        if not claimed:
            return run, None
    clock = time.monotonic()
    result: Reconciliation | None = None
    try:
        if update_rollups:
            insights_rollup_update()
        result = reconcile()
    except Exception as error:
        logger.exception("reconciliation run %s failed", run.pk)
        run.status = ReconciliationRun.Status.FAILED
        run.error = f"The reconciliation could not be run ({type(error).__name__})."
    else:
        run.status = ReconciliationRun.Status.DONE
        run.currencies = [_as_json(b) for b in result.currencies]
        run.problems = result.problems
        run.differences = len(result.problems)
    run.finished_at = timezone.now()
    run.duration_ms = round((time.monotonic() - clock) * 1000)
    run.save(
        update_fields=[
            "status",
            "error",
            "currencies",
            "problems",
            "differences",
            "finished_at",
            "duration_ms",
        ]
    )
    ReconciliationRun.objects.filter(finished_at__lt=run.finished_at - KEEP_RUNS).delete()
    return run, result
