"""Commercial records: plans and subscriptions, packs and top-ups, auto top-up, contracts,
Stripe's incoming events, outgoing webhooks and the alert state.

Credits themselves live in the ledger; every grant made here goes through ledger.services and
names its origin in `external_reference` (`sub:<id>:<period>`, `topup:<id>`, `contract:<id>:<n>`),
which is unique per tenant: that uniqueness is what makes each grant happen once.
"""

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q

from ratecards.models import RateCard, RateCardVersion
from tenants.models import TenantKeyedModel, TenantOwnedModel

ZERO = Decimal("0")
# A tenant's low-balance alert thresholds until it sets its own (AlertSettings).
DEFAULT_ALERT_THRESHOLDS = (20, 10)


def credits_field(**kwargs: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=18, decimal_places=4, **kwargs)


class Plan(models.Model):
    """A subscription tier: a monthly price and the credits it includes each period, plus
    `credits_per_seat` for every seat (the per-member pattern). Its prices per currency (and
    their Stripe Prices) are PlanPrice rows; `price_minor` / `currency` is its list price."""

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=100)
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    included_credits = credits_field()
    credits_per_seat = credits_field(default=ZERO)
    # Null: the default rate card.
    rate_card = models.ForeignKey(
        RateCard, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["price_minor", "slug"]
        constraints = [
            models.CheckConstraint(condition=Q(price_minor__gte=0), name="plan_price_gte_0"),
            models.CheckConstraint(condition=Q(included_credits__gt=0), name="plan_credits_gt_0"),
            models.CheckConstraint(
                condition=Q(credits_per_seat__gte=0), name="plan_credits_per_seat_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def allowance(self, seats: int) -> Decimal:
        """The credits one period of this plan includes for `seats` seats."""
        return self.included_credits + self.credits_per_seat * seats


class PlanPrice(models.Model):
    """A plan's fee in one currency: a base price, and a price per seat (quantity = seats) when
    the plan has seats; with the Stripe Prices that charge them (README, "Stripe set-up")."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="prices")
    currency = models.CharField(max_length=3)
    base_minor = models.BigIntegerField()
    per_seat_minor = models.BigIntegerField(default=0)
    stripe_base_price_id = models.CharField(max_length=255, blank=True)
    stripe_seat_price_id = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plan", "currency"], name="planprice_plan_currency"),
            models.CheckConstraint(condition=Q(base_minor__gte=0), name="planprice_base_gte_0"),
            models.CheckConstraint(condition=Q(per_seat_minor__gte=0), name="planprice_seat_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id} in {self.currency}"

    @property
    def has_seats(self) -> bool:
        return self.per_seat_minor > 0 or bool(self.stripe_seat_price_id)


# A subscription that is neither cancelled nor never paid: one per tenant.
LIVE_SUBSCRIPTION = ("incomplete", "active", "past_due")


class Subscription(TenantOwnedModel):
    """A tenant's plan. Linked to the gateway (`gateway` set), its credits follow its paid
    invoices (SubscriptionInvoice); unlinked (made before billing collected fees), the renewal
    sweep grants each period as it always did, until `subscription_link` links it."""

    class Status(models.TextChoices):
        # Stripe's statuses, mapped (billing/services/subscriptions.py, STRIPE_STATUSES).
        INCOMPLETE = "incomplete", "Incomplete (first invoice unpaid)"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    seats = models.PositiveIntegerField(default=1)
    currency = models.CharField(max_length=3, default="USD")
    # Periods run from the anchor's day of month (the 31st becomes the month's last day).
    anchor = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    # Blank: not linked to a gateway (renews by the sweep alone, as before).
    gateway = models.CharField(max_length=16, blank=True)
    gateway_reference = models.CharField(max_length=255, blank=True)
    # The gateway's subscription items ({"base": id, "seat": id}) and, while a change waits
    # for the period end, its schedule.
    gateway_items = models.JSONField(default=dict, blank=True)
    gateway_schedule = models.CharField(max_length=255, blank=True)
    # What the subscription becomes at the period end (a downgrade, fewer seats).
    next_plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    next_seats = models.PositiveIntegerField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    past_due_since = models.DateTimeField(null=True, blank=True)
    # When the renewal sweep last asked the gateway about it (it asks at most every 15 minutes).
    reconciled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(status__in=LIVE_SUBSCRIPTION),
                name="subscription_one_live_per_tenant",
            ),
            models.UniqueConstraint(
                fields=["tenant", "gateway", "gateway_reference"],
                condition=~Q(gateway_reference=""),
                name="subscription_tenant_reference_uniq",
            ),
            models.CheckConstraint(condition=Q(seats__gte=1), name="subscription_seats_gte_1"),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "current_period_end"],
                condition=Q(status__in=LIVE_SUBSCRIPTION),
                name="subscription_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} on {self.plan_id} ({self.status})"

    @property
    def is_linked(self) -> bool:
        return bool(self.gateway)

    @property
    def allowance(self) -> Decimal:
        return self.plan.allowance(self.seats)


class RefundReason(models.TextChoices):
    """Why money of a purchase or an invoice went back (billing/services/refunds.py,
    invoice_refunds.py)."""

    REFUND = "refund", "Refunded"
    DISPUTE_LOST = "dispute_lost", "Lost in a dispute"


class SubscriptionInvoice(TenantOwnedModel):
    """One gateway invoice of a subscription: a period's fee (`period`) or a change invoiced at
    once (`change`: an upgrade, more seats). Its credits are granted when it is paid, once
    (ledger reference `sub:<id>:<period>` for a period, `sub:<id>:<period>:change:<pk>` for a
    change)."""

    class Kind(models.TextChoices):
        PERIOD = "period", "Period"
        CHANGE = "change", "Change"

    class Status(models.TextChoices):
        # A change whose gateway call has not answered yet.
        REQUESTED = "requested", "Requested"
        OPEN = "open", "Open (unpaid)"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"
        VOID = "void", "Void"

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    gateway = models.CharField(max_length=16)
    gateway_reference = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=255)
    period_index = models.PositiveIntegerField()
    # What it pays for: the plan and seats (a change: the new ones) and, for a change, the
    # part of the period left when it was asked for (the credits are prorated by it).
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    seats = models.PositiveIntegerField()
    fraction = models.DecimalField(max_digits=7, decimal_places=6, default=Decimal(1))
    credits = credits_field(null=True, blank=True)
    amount_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    hosted_url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    # Money that went back for it (billing/services/invoice_refunds.py, as on a top-up): how
    # much in all (refunds, and what a lost dispute took), the credits it granted that came
    # back out of the balance, those already spent, why, and the gateway's refund or dispute
    # (a dispute is applied once).
    refunded_minor = models.BigIntegerField(default=0)
    credits_taken_back = credits_field(default=ZERO)
    credits_owed = credits_field(default=ZERO)
    refund_reason = models.CharField(max_length=16, choices=RefundReason.choices, blank=True)
    refund_reference = models.CharField(max_length=255, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="subinvoice_tenant_key_uniq"
            ),
            models.UniqueConstraint(
                fields=["tenant", "gateway", "gateway_reference"],
                condition=~Q(gateway_reference=""),
                name="subinvoice_tenant_reference_uniq",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "subscription", "created_at"], name="subinvoice_tenant_sub_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} invoice {self.pk} of subscription {self.subscription_id}"


class CreditPack(models.Model):
    """Credits for sale once; bought credits never expire (a `permanent` bucket)."""

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=100)
    credits = credits_field()
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["price_minor", "slug"]
        constraints = [
            models.CheckConstraint(condition=Q(price_minor__gt=0), name="pack_price_gt_0"),
            models.CheckConstraint(condition=Q(credits__gt=0), name="pack_credits_gt_0"),
        ]

    def __str__(self) -> str:
        return self.name


class CreditPackPrice(models.Model):
    """A pack's price in one currency (as PlanPrice is a plan's): a tenant is offered the packs
    priced in its billing currency, at that price. `CreditPack.price_minor` / `currency` is its
    list price, which migration 0013 made its first CreditPackPrice."""

    pack = models.ForeignKey(CreditPack, on_delete=models.CASCADE, related_name="prices")
    currency = models.CharField(max_length=3)
    price_minor = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pack", "currency"], name="packprice_pack_currency"),
            models.CheckConstraint(condition=Q(price_minor__gt=0), name="packprice_price_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.pack_id} in {self.currency}"


class BillingCustomer(TenantOwnedModel):
    """The tenant at the payment gateway, and the card saved for off-session charges."""

    gateway = models.CharField(max_length=16)
    customer_id = models.CharField(max_length=255)
    payment_method_id = models.CharField(max_length=255, blank=True)
    # What the customer is shown of the saved card (never the gateway's id).
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="billingcustomer_tenant_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.gateway} customer {self.customer_id}"


class TopUp(TenantOwnedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        # The checkout session ran out unpaid, or the customer cancelled it.
        EXPIRED = "expired", "Expired"
        CANCELED = "canceled", "Canceled"

    pack = models.ForeignKey(CreditPack, on_delete=models.PROTECT, related_name="+")
    credits = credits_field()
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    gateway = models.CharField(max_length=16)
    # The checkout session (portal) or payment intent (auto top-up) at the gateway.
    gateway_reference = models.CharField(max_length=255, blank=True)
    # The payment that completed it (a payment intent id), recorded at completion.
    payment_reference = models.CharField(max_length=255, blank=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    # Sent with every gateway call for this top-up, so a retried call never charges twice.
    idempotency_key = models.CharField(max_length=255)
    # The client's Idempotency-Key header (POST /api/v1/top-ups) and what it asked for, so a
    # replay returns this top-up and another body under the same key is refused.
    request_key = models.CharField(max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    auto = models.BooleanField(default=False)
    failure_reason = models.TextField(blank=True)
    # When the gateway's checkout session stops taking payment (then the top-up is expired).
    expires_at = models.DateTimeField(null=True, blank=True)
    # The gateway's receipt (Stripe's receipt_url); the fake gateway's is the portal's page.
    receipt_url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    # Money that went back to the customer (billing/services/refunds.py): how much in all
    # (refunds, and what a lost dispute took), the credits that came back out of the
    # balance for it, and those already spent: the customer's debt, shown to the vendor only.
    refunded_minor = models.BigIntegerField(default=0)
    credits_taken_back = credits_field(default=ZERO)
    credits_owed = credits_field(default=ZERO)
    refund_reason = models.CharField(max_length=16, choices=RefundReason.choices, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    # The vendor's refund through the gateway: its idempotency key (committed before the call)
    # and the gateway's refund.
    refund_idempotency_key = models.CharField(max_length=255, blank=True)
    refund_reference = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="topup_tenant_key_uniq"
            ),
            models.UniqueConstraint(
                fields=["tenant", "request_key"],
                condition=~Q(request_key=""),
                name="topup_tenant_request_key_uniq",
            ),
            models.UniqueConstraint(
                fields=["tenant", "gateway", "gateway_reference"],
                condition=~Q(gateway_reference=""),
                name="topup_tenant_reference_uniq",
            ),
            # One auto top-up in flight per tenant: the database refuses a second.
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(auto=True, status="pending"),
                name="topup_one_pending_auto_per_tenant",
            ),
            models.CheckConstraint(condition=Q(amount_minor__gte=0), name="topup_amount_gte_0"),
            models.CheckConstraint(
                condition=Q(refunded_minor__gte=0, refunded_minor__lte=models.F("amount_minor")),
                name="topup_refunded_in_range",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="topup_tenant_created_idx"),
            models.Index(
                fields=["tenant", "auto", "created_at"],
                condition=Q(auto=True),
                name="topup_tenant_auto_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"top-up {self.pk} ({self.credits} credits, {self.status})"

    @property
    def receipt_number(self) -> str:
        return f"CL-{self.tenant_id}-{self.pk:06d}"


class AutoTopUpPolicy(TenantOwnedModel):
    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        BACKING_OFF = "backing_off", "Backing off after a failed payment"
        DISABLED = "disabled", "Disabled after repeated failures"

    enabled = models.BooleanField(default=False)
    threshold = credits_field()
    pack = models.ForeignKey(CreditPack, on_delete=models.PROTECT, related_name="+")
    monthly_cap_minor = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    consecutive_failures = models.PositiveIntegerField(default=0)
    backoff_until = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)
    # The calendar month ("2026-01") whose cap refusal was already announced, so a tenant
    # hears about the cap once a month rather than on every debit under the threshold.
    capped_month = models.CharField(max_length=7, blank=True)
    last_refusal = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "auto top-up policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="autotopup_tenant_uniq"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="autotopup_threshold_gte_0"),
            models.CheckConstraint(
                condition=Q(monthly_cap_minor__gte=0), name="autotopup_cap_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"auto top-up of tenant {self.tenant_id} ({self.state})"


class Contract(TenantOwnedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"

    class Schedule(models.TextChoices):
        UPFRONT = "upfront", "All up front"
        MONTHLY = "monthly", "Monthly tranches"

    class RateCardMode(models.TextChoices):
        FOLLOW = "follow", "Follow the card (after notice)"
        PINNED = "pinned", "Pinned to a version"

    class CreditsOn(models.TextChoices):
        SIGNATURE = "signature", "At signature (net terms)"
        PAYMENT = "payment", "When the invoice is paid"

    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    price_per_1000_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    committed_credits = credits_field()
    grant_schedule = models.CharField(
        max_length=16, choices=Schedule.choices, default=Schedule.UPFRONT
    )
    start_at = models.DateTimeField()
    end_at = models.DateTimeField()
    rate_card = models.ForeignKey(RateCard, on_delete=models.PROTECT, related_name="+")
    rate_card_mode = models.CharField(
        max_length=16, choices=RateCardMode.choices, default=RateCardMode.FOLLOW
    )
    notice_days = models.PositiveIntegerField(default=30)
    pinned_version = models.ForeignKey(
        RateCardVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    pinned_until = models.DateTimeField(null=True, blank=True)
    overdraft_limit = credits_field(default=ZERO)
    monthly_spending_cap_minor = models.BigIntegerField(null=True, blank=True)
    # How the commitment is invoiced (send_invoice): due this many days after it is issued.
    net_terms_days = models.PositiveIntegerField(default=30)
    # When a tranche's credits come: when its invoice is issued (at signature, on net terms)
    # or when it is paid.
    credits_on = models.CharField(
        max_length=16, choices=CreditsOn.choices, default=CreditsOn.SIGNATURE
    )
    # The price per 1,000 credits of overdraft invoiced in arrears; null: the contract's price.
    overage_price_per_1000_minor = models.BigIntegerField(null=True, blank=True)
    # The first contract month (from start_at, as the tranches) that is invoiced: a contract
    # active before invoicing existed is not invoiced for the past (billing.0011).
    invoicing_from_period = models.PositiveIntegerField(default=0)
    # The next contract month whose overdraft is to be invoiced (the monthly sweep's marker).
    overage_next_period = models.PositiveIntegerField(default=0)
    activated_at = models.DateTimeField(null=True, blank=True)
    # When its overdraft limit was applied: at activation if it had started, else by the
    # contract_start_due sweep once start_at passes (a renewal activated ahead of its start).
    terms_applied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(price_per_1000_minor__gte=0), name="contract_price_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(committed_credits__gt=0), name="contract_credits_gt_0"
            ),
            models.CheckConstraint(
                condition=Q(end_at__gt=models.F("start_at")), name="contract_dates"
            ),
            models.CheckConstraint(
                condition=Q(overdraft_limit__gte=0), name="contract_overdraft_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(overage_price_per_1000_minor__gte=0),
                name="contract_overage_price_gte_0",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="contract_tenant_status_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def overage_price(self) -> int:
        """The price per 1,000 credits of overdraft invoiced."""
        if self.overage_price_per_1000_minor is None:
            return self.price_per_1000_minor
        return self.overage_price_per_1000_minor


class ContractInvoice(TenantOwnedModel):
    """One gateway invoice of a contract (billing/services/contract_invoices.py): a tranche of
    its commitment (`period_index` = the tranche), or the overdraft of a contract month invoiced
    in arrears (`period_index` = the month), at most one of each. Written `requested` before the
    gateway is asked (with the key every call for it carries), then `open`, `paid` or `void` as
    the gateway says."""

    class Kind(models.TextChoices):
        COMMITMENT = "commitment", "Commitment"
        OVERAGE = "overage", "Overdraft used"

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested (the gateway has not answered yet)"
        OPEN = "open", "Open (unpaid)"
        PAID = "paid", "Paid"
        VOID = "void", "Void"
        UNCOLLECTIBLE = "uncollectible", "Uncollectible"

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    period_index = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED)
    gateway = models.CharField(max_length=16)
    gateway_reference = models.CharField(max_length=255, blank=True)
    # The gateway's invoice number (Stripe's `number`, given at finalization).
    number = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=255)
    description = models.CharField(max_length=500)
    credits = credits_field()
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    hosted_url = models.URLField(max_length=2000, blank=True)
    # The gateway's last refusal or failure, while the request waits for a retry.
    error = models.TextField(blank=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    created_at = models.DateTimeField()
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # Money that went back for it (billing/services/invoice_refunds.py, as on a top-up): how
    # much in all (refunds, and what a lost dispute took), the credits it granted that came
    # back out of the balance, those already spent, why, and the gateway's refund or dispute
    # (a dispute is applied once).
    refunded_minor = models.BigIntegerField(default=0)
    credits_taken_back = credits_field(default=ZERO)
    credits_owed = credits_field(default=ZERO)
    refund_reason = models.CharField(max_length=16, choices=RefundReason.choices, blank=True)
    refund_reference = models.CharField(max_length=255, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "contract", "kind", "period_index"],
                name="contractinvoice_once_per_period",
            ),
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="contractinvoice_tenant_key_uniq"
            ),
            models.UniqueConstraint(
                fields=["tenant", "gateway", "gateway_reference"],
                condition=~Q(gateway_reference=""),
                name="contractinvoice_reference_uniq",
            ),
            models.CheckConstraint(
                condition=Q(amount_minor__gte=0), name="contractinvoice_amount_gte_0"
            ),
            models.CheckConstraint(condition=Q(credits__gt=0), name="contractinvoice_credits_gt_0"),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="contractinvoice_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} invoice {self.pk} of contract {self.contract_id}"


class StripeEvent(models.Model):
    """An incoming Stripe event, stored before it is processed (one row per event id)."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(processed_at__isnull=True),
                name="stripeevent_unprocessed_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookEndpoint(TenantOwnedModel):
    url = models.URLField(max_length=2000)
    # "whsec_" + base64 of 32 random bytes (Standard Webhooks).
    secret = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    # Empty: every event type.
    event_types = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Deleted by the tenant (webhook_endpoint_delete): inactive and gone from the API, while
    # its deliveries stay in the vendor's log.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "active"], name="webhookendpoint_tenant_idx")]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(TenantOwnedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (gave up)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "endpoint", "event_id"], name="delivery_tenant_event_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="delivery_tenant_created_idx"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="delivery_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(TenantOwnedModel):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The start of what the endpoint answered (RESPONSE_KEPT characters), for the tenant to
    # read beside the status code in the portal.
    response = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField()
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "delivery", "number"], name="attempt_tenant_delivery_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.status_code}"


class AlertState(TenantOwnedModel):
    """Whether a low-balance threshold (percent; 0 = exhausted) has fired since it was last
    re-armed: an alert goes out once per crossing."""

    class State(models.TextChoices):
        ARMED = "armed", "Armed"
        FIRED = "fired", "Fired"

    threshold = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.ARMED)
    fired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "threshold"], name="alertstate_tenant_threshold_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.threshold}% of tenant {self.tenant_id}: {self.state}"


def default_alert_thresholds() -> list[int]:
    return list(DEFAULT_ALERT_THRESHOLDS)


class AlertSettings(TenantKeyedModel):
    """A tenant's low-balance alert thresholds: percentages (highest first) of what it was last
    topped up to (the ledger account's `topped_up_to`). No row: DEFAULT_ALERT_THRESHOLDS."""

    thresholds = models.JSONField(default=default_alert_thresholds)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "alert settings"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="alertsettings_tenant_uniq"),
        ]

    def __str__(self) -> str:
        return f"alerts of tenant {self.tenant_id} at {self.thresholds}%"


class TenantBilling(TenantKeyedModel):
    """How a tenant is billed (billing_currency_get and credits_display read it).

    `currency`: the one currency it is billed in, set by its first subscription, purchase or
    contract and never changed by them after (blank: none yet, the vendor's default applies);
    billing.0015 gave existing tenants their plan's. `credit_display`: `money` shows the
    customer money instead of credits (invisible credits, for outcome-priced products), at
    `minor_per_credit` minor units of `currency` per credit; the ledger stays in credits."""

    class Display(models.TextChoices):
        CREDITS = "credits", "Credits"
        MONEY = "money", "Money (credits stay invisible)"

    currency = models.CharField(max_length=3, blank=True)
    credit_display = models.CharField(
        max_length=8, choices=Display.choices, default=Display.CREDITS
    )
    minor_per_credit = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "tenant billing"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="tenantbilling_tenant_uniq"),
            models.CheckConstraint(
                condition=Q(credit_display="credits") | Q(minor_per_credit__gt=0),
                name="tenantbilling_money_has_value",
            ),
        ]

    def __str__(self) -> str:
        return f"billing of tenant {self.tenant_id} ({self.currency or 'no currency yet'})"
