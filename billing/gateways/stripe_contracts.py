"""Stripe Invoicing for contracts, mixed into StripeGateway.

A contract invoice is a one-off invoice with `collection_method=send_invoice` and
`days_until_due` = the contract's net terms: created as a draft that takes no pending invoice
items, given its one line (an invoice item), then finalized with `auto_advance` so that Stripe
sends it to the customer and follows it up. Each of the three requests carries its own key
derived from the invoice row's, so a retry after any of them makes nothing twice; past Stripe's
24-hour key window a retry searches for the invoice by the row id in its metadata instead.
Its metadata (`contract_invoice_id`, `tenant_id`) is how `invoice.paid` finds the row.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import stripe
from django.utils import timezone

from billing.gateways.contract_invoicing import ContractInvoiceRequest, GatewayContractInvoice
from billing.gateways.stripe_subscriptions import _gateway_error, _get

# Stripe keeps an idempotency key for 24 hours; a request older than this looks up, not retries.
KEY_WINDOW = timedelta(hours=23)
INVOICE_ID_KEY = "contract_invoice_id"


def _metadata_id(metadata: Any, key: str) -> int | None:
    value = metadata.get(key) if isinstance(metadata, Mapping) else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def stripe_contract_invoice_read(invoice: Mapping[str, Any]) -> GatewayContractInvoice:
    """Stripe's invoice JSON (an API answer or a webhook's `data.object`); a field of the wrong
    shape is a ValueError."""
    status = _get(invoice, "status", str)
    due = _get(invoice, "due_date", int, required=False)
    metadata = invoice.get("metadata")
    return GatewayContractInvoice(
        reference=_get(invoice, "id", str),
        number=_get(invoice, "number", str, required=False) or "",
        status=status,
        amount_minor=_get(invoice, "amount_paid" if status == "paid" else "amount_due", int),
        currency=_get(invoice, "currency", str).upper(),
        hosted_url=_get(invoice, "hosted_invoice_url", str, required=False) or "",
        due_at=datetime.fromtimestamp(due, tz=UTC) if due is not None else None,
        invoice_id=_metadata_id(metadata, INVOICE_ID_KEY),
        tenant_id=_metadata_id(metadata, "tenant_id"),
    )


class StripeContracts:
    """Mixed into StripeGateway."""

    if TYPE_CHECKING:

        @property
        def client(self) -> stripe.StripeClient: ...

        def outside_transaction(self) -> None: ...

    def contract_invoice_create(self, *, request: ContractInvoiceRequest) -> GatewayContractInvoice:
        self.outside_transaction()
        key = request.idempotency_key
        metadata = {
            "tenant_id": str(request.tenant_id),
            "contract_id": str(request.contract_id),
            INVOICE_ID_KEY: str(request.invoice_id),
        }
        invoices = self.client.v1.invoices
        try:
            found = None
            if timezone.now() - request.requested_at > KEY_WINDOW:
                query = (
                    f"metadata['{INVOICE_ID_KEY}']:'{request.invoice_id}' AND "
                    f"metadata['tenant_id']:'{request.tenant_id}'"
                )
                hits = invoices.search(params={"query": query, "limit": 1}).data
                found = hits[0] if hits else None
                if found is not None and found.status != "draft":
                    return stripe_contract_invoice_read(found.to_dict())
            draft = found or invoices.create(
                params={
                    "customer": request.customer_id,
                    "collection_method": "send_invoice",
                    "days_until_due": request.days_until_due,
                    "currency": request.currency.lower(),
                    "description": request.description,
                    "metadata": metadata,
                    "pending_invoice_items_behavior": "exclude",
                    "auto_advance": False,
                },
                options={"idempotency_key": f"{key}:invoice"},
            )
            lines = draft.to_dict().get("lines")
            if not (isinstance(lines, Mapping) and lines.get("data")):
                self.client.v1.invoice_items.create(
                    params={
                        "customer": request.customer_id,
                        "invoice": draft.id,
                        "currency": request.currency.lower(),
                        "amount": request.amount_minor,
                        "description": request.description,
                        "metadata": metadata,
                    },
                    options={"idempotency_key": f"{key}:line"},
                )
            issued = invoices.finalize_invoice(
                draft.id,
                params={"auto_advance": True},
                options={"idempotency_key": f"{key}:finalize"},
            )
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc
        return stripe_contract_invoice_read(issued.to_dict())

    def contract_invoice_get(self, *, reference: str) -> GatewayContractInvoice:
        self.outside_transaction()
        try:
            found = self.client.v1.invoices.retrieve(reference)
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc
        return stripe_contract_invoice_read(found.to_dict())
