"""What billing needs from a gateway to invoice a contract (Stripe Invoicing, `send_invoice`):
an invoice for one amount, due on the contract's net terms, and its state later. Every call
carries the invoice row's idempotency key, so a retried request never makes a second invoice."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ContractInvoiceRequest:
    """One contract invoice to issue: a commitment tranche or a month's overdraft."""

    tenant_id: int
    contract_id: int
    invoice_id: int
    customer_id: str
    description: str
    amount_minor: int
    currency: str
    days_until_due: int
    idempotency_key: str
    # When the row was written: past the gateway's idempotency window, look the invoice up.
    requested_at: datetime


@dataclass(frozen=True)
class GatewayContractInvoice:
    """A contract invoice as the gateway knows it; `status` in Stripe's words ("draft",
    "open", "paid", "void", "uncollectible")."""

    reference: str
    number: str
    status: str
    amount_minor: int
    currency: str
    hosted_url: str = ""
    due_at: datetime | None = None
    # Our row, from the metadata we wrote (None: the gateway's object names none).
    invoice_id: int | None = None
    tenant_id: int | None = None


class ContractInvoicing(ABC):
    """Mixed into PaymentGateway."""

    @abstractmethod
    def contract_invoice_create(self, *, request: ContractInvoiceRequest) -> GatewayContractInvoice:
        """Issue the invoice (finalized, sent to the customer, due in `days_until_due` days);
        the same request again returns the same invoice."""

    @abstractmethod
    def contract_invoice_get(self, *, reference: str) -> GatewayContractInvoice:
        """The invoice now (the reconciliation sweep's question)."""
