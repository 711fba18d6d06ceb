"""The vendor console's own rollups: money per day, kept off the hot path (insights/rollup.py).

Metering's UsageDay counts usage; these count money, which only the vendor's staff see:

- MarginDay: revenue (what the credits spent were paid for, the cost basis of the buckets
  drawn, recognised when spent) and COGS per tenant, UTC day, action, model class and workflow,
  net of the refunds dated that day. Summed from the same rows, for reads across all tenants:
  MarginTotalDay (per day, action, model class, workflow; no tenant), TenantMarginDay (per
  tenant and day) and TenantMarginMonth (per tenant and month).
- ValueDay: every credit that moved in or out of a bucket, by movement, bucket policy, source
  and currency, with the money it carries (credits x the bucket's cost basis): breakage
  (expiry), revenue, refunds, revocations, adjustments. Reconciliation and breakage read it.

Money is minor units of its currency, unrounded (8 places), never summed across currencies.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models

from tenants.models import TenantKeyedModel
from tenants.tailing import Watermark

ZERO = Decimal("0")


def _money() -> models.DecimalField:
    return models.DecimalField(max_digits=28, decimal_places=8, default=ZERO)


def _credits() -> models.DecimalField:
    return models.DecimalField(max_digits=24, decimal_places=4, default=ZERO)


class MarginSums(models.Model):
    """A margin rollup's currency pair and money: MarginDay's, and the rollups summed from it
    (below), which the same job folds the same rows into (insights/rollup.py), so each equals
    the sum of MarginDay's rows it covers, to the unrounded minor unit."""

    currency = models.CharField(max_length=3)
    cogs_currency = models.CharField(max_length=3)
    events = models.BigIntegerField(default=0)
    quantity = _credits()
    # Charged less refunded (a day of refunds only may be negative), and the money for them.
    credits = _credits()
    revenue_minor = _money()
    cogs_minor = _money()
    events_without_cost = models.BigIntegerField(default=0)
    quantity_without_cost = _credits()
    credits_without_cost = _credits()
    revenue_without_cost_minor = _money()

    class Meta:
        abstract = True


class MarginDay(TenantKeyedModel, MarginSums):
    """Revenue and COGS of a tenant's usage events of one UTC day (the day they were recorded,
    as metering's UsageDay), action, model class, workflow name ('' outside a run), revenue
    currency and cost currency. Events without any cost component have an unknown cost, not a
    zero one: their credits and revenue are kept apart (`*_without_cost`) so a margin is
    computed only over events whose cost is known."""

    day = models.DateField()
    action = models.CharField(max_length=64)
    model_class = models.CharField(max_length=64, blank=True, default="")
    workflow = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            # The job's upsert key; it serves every read (a tenant's days in a range) too.
            models.UniqueConstraint(
                fields=[
                    "tenant",
                    "day",
                    "action",
                    "model_class",
                    "workflow",
                    "currency",
                    "cogs_currency",
                ],
                name="marginday_key_uniq",
            ),
        ]
        indexes = [
            # Not led by `tenant`, on purpose (like the ledger's bucket_due_idx): the console
            # reads every tenant's days in a range at once (customers, margin by day); a
            # tenant-first index would make that a scan of every tenant. Written by the job,
            # never by the hot path.
            models.Index(fields=["day"], name="marginday_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.action}/{self.model_class}: {self.revenue_minor} {self.currency}"


# The columns every margin rollup adds up (its currency pair is part of its key).
MARGIN_SUMS = tuple(
    f.name for f in MarginSums._meta.local_fields if f.name not in ("currency", "cogs_currency")
)


class MarginTotalDay(MarginSums):
    """Every tenant's MarginDay rows of one UTC day summed per action, model class, workflow
    and currency pair: margin by day, action, model class and workflow across all customers,
    and the suggested weights, read a few rows a day whatever the number of tenants. Not
    tenant-owned (a sum over all of them; under Citus, a table of the coordinator's)."""

    day = models.DateField()
    action = models.CharField(max_length=64)
    model_class = models.CharField(max_length=64, blank=True, default="")
    workflow = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            # The job's upsert key, led by the day: it serves every read (days in a range).
            models.UniqueConstraint(
                fields=["day", "action", "model_class", "workflow", "currency", "cogs_currency"],
                name="margintotalday_key_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.action}/{self.model_class}: {self.revenue_minor} {self.currency}"


class TenantMarginDay(TenantKeyedModel, MarginSums):
    """A tenant's MarginDay rows of one UTC day summed per currency pair (over action, model
    class and workflow): margin by customer over the days of a range outside whole months."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "currency", "cogs_currency"],
                name="tenantmarginday_key_uniq",
            ),
        ]
        indexes = [
            # Every tenant's days in a range (margin by customer, the customers page): not led
            # by `tenant`, as marginday_day_idx.
            models.Index(fields=["day"], name="tenantmarginday_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.revenue_minor} {self.currency}"


class TenantMarginMonth(TenantKeyedModel, MarginSums):
    """A tenant's MarginDay rows of one calendar month (UTC days; `month` is its first day)
    summed per currency pair: margin by customer over the whole months of a range, the days
    at its edges from TenantMarginDay."""

    month = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "month", "currency", "cogs_currency"],
                name="tenantmarginmonth_key_uniq",
            ),
            models.CheckConstraint(
                condition=models.Q(month__day=1), name="tenantmarginmonth_first_day"
            ),
        ]
        indexes = [
            # Every tenant's months in a range (not led by `tenant`, as marginday_day_idx).
            models.Index(fields=["month"], name="tenantmarginmonth_month_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.revenue_minor} {self.currency}"


class Movement(models.TextChoices):
    """Why credits moved in or out of a bucket (a ledger entry's kind, refined)."""

    GRANT = "grant", "Granted"
    SPEND = "spend", "Spent (debit)"
    REFUND = "refund", "Refunded usage (reversal of a debit)"
    REVOCATION = "revocation", "Taken back (a refunded or disputed grant)"
    EXPIRY = "expiry", "Expired unspent (breakage)"
    SETTLEMENT = "settlement", "Repaid an overdraft"
    ADJUSTMENT = "adjustment", "Adjusted by staff"


class ValueDay(TenantKeyedModel):
    """The credits that moved in (positive) or out (negative) of a tenant's buckets on one UTC
    day, by movement, bucket policy, source and currency, and their money: the sum of credits
    x the bucket's cost basis (minor units, unrounded). Holds and releases move no bucket and
    are not here; the overdraft bucket's cost basis is 0."""

    day = models.DateField()
    movement = models.CharField(max_length=16, choices=Movement.choices)
    policy = models.CharField(max_length=16)
    source = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    credits = _credits()
    value_minor = _money()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "movement", "policy", "source", "currency"],
                name="valueday_key_uniq",
            ),
        ]
        indexes = [
            # Breakage over all tenants by month (not led by `tenant`, as marginday_day_idx).
            models.Index(fields=["movement", "day"], name="valueday_movement_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.movement} {self.policy}/{self.source}: {self.credits}"


class InsightsWatermark(Watermark):
    """How far the console's rollup has read its streams (tenants/tailing.py):
    `margin_events` (usage events) and `ledger_entries` (every ledger entry)."""


class Simulation(models.Model):
    """A re-pricing of the real events of a window under a draft rate card version and/or a
    draft cost catalog (insights/simulator.py), made by a task; its figures are kept in
    `result` so a page reads them without re-pricing. The window is fixed when it is asked
    for (whole UTC days), so the same draft and window give the same figures."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    # The draft whose rates re-price the events of its card (null: rates as recorded).
    version = models.ForeignKey(
        "ratecards.RateCardVersion",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    # The draft whose unit costs re-cost the events (null: costs as recorded).
    cost_catalog = models.ForeignKey(
        "ratecards.CostCatalogVersion",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    since = models.DateTimeField()
    until = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    tenants_total = models.PositiveIntegerField(default=0)
    tenants_done = models.PositiveIntegerField(default=0)
    events = models.BigIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(since__lt=models.F("until")), name="simulation_window"
            ),
            models.CheckConstraint(
                condition=models.Q(version__isnull=False) | models.Q(cost_catalog__isnull=False),
                name="simulation_has_a_draft",
            ),
        ]

    def __str__(self) -> str:
        return f"simulation {self.pk} ({self.status})"


class ExchangeRate(models.Model):
    """What one unit of `from_currency` is worth in `to_currency`, from the UTC day
    `effective_on` until the pair's next rate: a table the vendor's staff keep (the console's
    exchange-rate page, the admin). It converts nothing that is charged or stored: the console
    reads it to put COGS (in the cost catalog's currency) into the revenue's currency for a
    margin (insights/fx.py). The rate in force on a day is the pair's latest effective on or
    before it; a day before the pair's first rate has none, and its margin is not computed.

    Why here and not in ratecards, beside the cost catalog: only the console's reports read
    it, and a table below the top layer would invite the hot path to convert, so that a rate
    entered later would change figures already recorded. Kept here, events and rollups stay in
    the currency they were recorded in and a margin is converted when it is read."""

    from_currency = models.CharField(max_length=3)
    to_currency = models.CharField(max_length=3)
    # Major units of `to_currency` per major unit of `from_currency` (1 USD = 0.92 EUR).
    rate = models.DecimalField(max_digits=24, decimal_places=12)
    effective_on = models.DateField()
    # Where the figure comes from (e.g. "ECB reference rate"): shown beside the rate.
    source = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["from_currency", "to_currency", "-effective_on"]
        constraints = [
            # One rate per pair and day; it also serves the lookup of the rate in force
            # (pair, then the latest effective_on at or before a day).
            models.UniqueConstraint(
                fields=["from_currency", "to_currency", "effective_on"],
                name="exchangerate_pair_day_uniq",
            ),
            models.CheckConstraint(condition=models.Q(rate__gt=0), name="exchangerate_positive"),
            models.CheckConstraint(
                condition=~models.Q(from_currency=models.F("to_currency")),
                name="exchangerate_two_currencies",
            ),
            models.CheckConstraint(
                condition=models.Q(from_currency__regex=r"^[A-Z]{3}$")
                & models.Q(to_currency__regex=r"^[A-Z]{3}$"),
                name="exchangerate_iso_codes",
            ),
        ]

    def __str__(self) -> str:
        return f"1 {self.from_currency} = {self.rate} {self.to_currency} from {self.effective_on}"


class ReconciliationRun(models.Model):
    """One reconciliation (insights/reconcile.py): by the hourly task, `manage.py reconcile` or
    a staff user's request (run by the same task, through the outbox). Its figures per currency
    and the differences it found are kept, so the console's page shows the last run instead of
    reconciling (every ledger entry and rollup row) on each request."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Hourly task"
        COMMAND = "command", "manage.py reconcile"
        STAFF = "staff", "Asked for by staff"

    trigger = models.CharField(max_length=8, choices=Trigger.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Per currency, both sides of the identity: CurrencyBalance's figures (minor units,
    # unrounded) as strings.
    currencies = models.JSONField(default=list, blank=True)
    problems = models.JSONField(default=list, blank=True)  # each also logged at ERROR
    differences = models.PositiveIntegerField(default=0)  # len(problems), for lists
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"reconciliation {self.pk} ({self.status})"

    @property
    def ok(self) -> bool:
        return self.status == self.Status.DONE and not self.differences


class StoredTrap(TenantKeyedModel):
    """A pinned contract's rate-card trap as the hourly job last figured it
    (insights/trap.py `contract_traps_store`): its events of the 30 days before `until`
    re-priced under `current`. The contracts page lists these instead of re-pricing every
    pinned customer's month of events on each request; a contract's own page figures its
    trap live. One row per contract pinned behind its card; the job removes the others."""

    # No index of their own: the table holds a row per pinned contract, read whole.
    contract = models.ForeignKey(
        "billing.Contract", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    pinned = models.ForeignKey(
        "ratecards.RateCardVersion", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    current = models.ForeignKey(
        "ratecards.RateCardVersion", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    since = models.DateTimeField()
    until = models.DateTimeField()  # when it was figured
    events = models.BigIntegerField()
    charged = _credits()
    under_current = _credits()
    unpriced = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "contract"], name="storedtrap_tenant_contract_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"trap of contract {self.contract_id} until {self.until:%Y-%m-%d %H:%M}"
