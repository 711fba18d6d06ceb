"""What billing needs from a payment gateway. Every call carries an idempotency key, so a
retried call (a worker crash, a timeout) never creates a second charge."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from billing.gateways.contract_invoicing import ContractInvoicing
from billing.models import Plan, PlanPrice, TopUp


@dataclass(frozen=True)
class CheckoutSession:
    reference: str
    url: str
    # When the session stops taking payment (Stripe's `expires_at`); None: it does not say.
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Card:
    """What the customer may see of a saved card: never the gateway's id."""

    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None


@dataclass(frozen=True)
class Charge:
    reference: str
    status: str  # "succeeded", "processing" (the webhook will tell) or "failed"
    failure_reason: str = ""
    # Failed because the card's bank wants the customer to confirm (SCA): an off-session
    # charge cannot, so retrying it would fail the same way.
    needs_authentication: bool = False


@dataclass(frozen=True)
class Refund:
    """A refund of a payment: "succeeded", "pending" (the money is on its way back) or
    "failed"/"canceled" (it is not)."""

    reference: str
    status: str
    failure_reason: str = ""


@dataclass(frozen=True)
class PaymentStatus:
    """A payment's state as the gateway knows it, in Stripe's PaymentIntent vocabulary
    ("succeeded", "processing", "requires_payment_method", "requires_capture", "canceled", ...)."""

    reference: str
    status: str
    failure_reason: str = ""


@dataclass(frozen=True)
class SubscriptionItems:
    """What a subscription charges: a plan's prices in one currency, and its seats."""

    plan: Plan
    price: PlanPrice
    seats: int


@dataclass(frozen=True)
class GatewayInvoice:
    """A subscription invoice as the gateway knows it. `status` in Stripe's words ("draft",
    "open", "paid", "void", "uncollectible"); `failed` when a payment of it was attempted and
    declined; `reason` Stripe's billing_reason ("subscription_create", "subscription_cycle",
    "subscription_update", ...); `period_start` the start of the period it pays for."""

    reference: str
    subscription_reference: str
    status: str
    reason: str
    period_start: datetime
    amount_minor: int
    currency: str
    failed: bool = False
    hosted_url: str = ""


@dataclass(frozen=True)
class GatewaySubscription:
    """A subscription at the gateway: its status in Stripe's words, its current period, item
    ids, and its latest invoices (newest first)."""

    reference: str
    status: str
    period_start: datetime
    period_end: datetime
    items: dict[str, str] = field(default_factory=dict)
    invoices: tuple[GatewayInvoice, ...] = ()
    schedule: str = ""


class PaymentGateway(ContractInvoicing, ABC):
    """A gateway's calls; contract invoices' are ContractInvoicing's (contract_invoicing.py)."""

    name: str

    @staticmethod
    def outside_transaction() -> None:
        # A gateway call inside a transaction would hold row locks for a network round trip,
        # and a rollback would forget a charge that really happened (STYLE.md).
        if connection.in_atomic_block:
            raise RuntimeError("Payment gateway calls must not run inside a database transaction.")

    @abstractmethod
    def checkout_create(
        self, *, top_up: TopUp, success_url: str, cancel_url: str
    ) -> CheckoutSession: ...

    @abstractmethod
    def checkout_expire(self, *, reference: str, idempotency_key: str) -> None:
        """Close the checkout session `reference` so it can no longer be paid; raises
        GatewayError if it cannot (it was paid meanwhile, say)."""

    @abstractmethod
    def receipt_url(self, *, top_up: TopUp) -> str:
        """The receipt of the top-up's completed payment ("" if the gateway has none yet)."""

    @abstractmethod
    def card_setup_create(
        self,
        *,
        tenant_id: int,
        customer_id: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        """A hosted page where the customer saves a card for later off-session charges."""

    @abstractmethod
    def card_get(self, *, payment_method_id: str) -> Card: ...

    @abstractmethod
    def card_make_default(
        self, *, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> None:
        """Make the card the customer's default (Stripe's invoices charge it too)."""

    @abstractmethod
    def card_detach(self, *, payment_method_id: str, idempotency_key: str) -> None: ...

    @abstractmethod
    def customer_create(self, *, tenant_id: int, name: str, idempotency_key: str) -> str: ...

    @abstractmethod
    def charge_off_session(
        self, *, top_up: TopUp, customer_id: str, payment_method_id: str
    ) -> Charge: ...

    @abstractmethod
    def payment_status(self, *, reference: str) -> PaymentStatus:
        """Where the payment `reference` (a PaymentIntent) stands now."""

    @abstractmethod
    def cancel_payment(self, *, reference: str, idempotency_key: str) -> PaymentStatus:
        """Cancel the uncaptured payment `reference` so it can never be captured or confirmed
        later; raises GatewayError if the gateway refuses (it succeeded meanwhile, say)."""

    @abstractmethod
    def refund_create(self, *, top_up: TopUp, amount_minor: int, idempotency_key: str) -> Refund:
        """Give `amount_minor` of the top-up's completed payment back to the customer."""

    # Subscriptions (Stripe Billing). Each call names an idempotency key; a subscription's
    # fees, proration, retries and invoices are the gateway's, its credits are ours.

    @abstractmethod
    def subscription_create(
        self,
        *,
        tenant_id: int,
        subscription_id: int,
        customer_id: str,
        payment_method_id: str,
        items: SubscriptionItems,
        idempotency_key: str,
    ) -> GatewaySubscription:
        """Subscribe and invoice the first period at once (its latest invoice says whether it
        was paid)."""

    @abstractmethod
    def subscription_change_now(
        self,
        *,
        reference: str,
        items: SubscriptionItems,
        idempotency_key: str,
    ) -> GatewayInvoice:
        """An upgrade or more seats: prorated and invoiced at once; unpaid, it changes nothing
        at the gateway (Stripe: always_invoice, pending_if_incomplete)."""

    @abstractmethod
    def subscription_change_at_period_end(
        self,
        *,
        reference: str,
        schedule: str,
        current: SubscriptionItems,
        items: SubscriptionItems | None,
        idempotency_key: str,
    ) -> str:
        """A downgrade or fewer seats from the next period (None: drop the one waiting);
        returns the schedule that holds it ("" when none is left)."""

    @abstractmethod
    def subscription_cancel_at_period_end(
        self, *, reference: str, schedule: str, idempotency_key: str
    ) -> None: ...

    @abstractmethod
    def subscription_get(self, *, reference: str) -> GatewaySubscription:
        """The subscription now, with its latest invoices (the renewal sweep's reconciliation)."""
