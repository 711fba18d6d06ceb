"""The fake gateway's contract invoices: Stripe Invoicing's `send_invoice` lifecycle played
locally. An invoice is issued open, due on the contract's net terms, and stays open until
`contract_invoice_pay` (the customer paid it) or `contract_invoice_void`; the reconciliation
sweep reads it back with `contract_invoice_get`. State lives in the Django cache like the fake's
payments and subscriptions; its invoice page is the portal's (billing:contract-invoice)."""

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from billing.exceptions import GatewayError, GatewayRefused
from billing.gateways.contract_invoicing import ContractInvoiceRequest, GatewayContractInvoice


class FakeContracts:
    """Mixed into FakeGateway."""

    if TYPE_CHECKING:

        def outside_transaction(self) -> None: ...

    # A request to make the next contract invoices fail, as a gateway that is down would.
    FAIL_KEY = "billing:fake-contract-invoices-fail"

    @staticmethod
    def _contract_key(reference: str) -> str:
        return f"billing:fake-contract-invoice:{reference}"

    @classmethod
    def contract_invoices_fail(cls, *, fail: bool = True, refuse: bool = False) -> None:
        """From now on creating a contract invoice fails (a timeout) or is refused (a 4xx)."""
        cache.set(cls.FAIL_KEY, ("refuse" if refuse else "fail") if fail else "", timeout=None)

    @classmethod
    def _load_contract_invoice(cls, reference: str) -> dict[str, Any]:
        state = cache.get(cls._contract_key(reference))
        if state is None:
            raise GatewayRefused(detail=f"No such invoice: {reference}.")
        return dict(state)

    @classmethod
    def _set_status(cls, reference: str, status: str) -> None:
        state = cls._load_contract_invoice(reference)
        if state["status"] == "open":
            state["status"] = status
        cache.set(cls._contract_key(reference), state, timeout=None)

    @classmethod
    def contract_invoice_pay(cls, *, reference: str) -> None:
        """The customer paid the open invoice `reference`."""
        cls._set_status(reference, "paid")

    @classmethod
    def contract_invoice_void(cls, *, reference: str) -> None:
        cls._set_status(reference, "void")

    @staticmethod
    def _contract_view(state: dict[str, Any]) -> GatewayContractInvoice:
        return GatewayContractInvoice(
            reference=state["reference"],
            number=state["number"],
            status=state["status"],
            amount_minor=state["amount_minor"],
            currency=state["currency"],
            hosted_url=reverse("billing:contract-invoice", kwargs={"invoice_id": state["row"]}),
            due_at=datetime.fromisoformat(state["due_at"]),
            invoice_id=state["row"],
            tenant_id=state["tenant"],
        )

    def contract_invoice_create(self, *, request: ContractInvoiceRequest) -> GatewayContractInvoice:
        self.outside_transaction()
        failing = cache.get(self.FAIL_KEY)
        if failing:
            kind = GatewayRefused if failing == "refuse" else GatewayError
            raise kind(detail="The fake gateway was told to fail contract invoices.")
        digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
        reference = f"fin_c_{digest}"
        existing = cache.get(self._contract_key(reference))
        if existing is not None:  # a retried call: the same invoice, as at Stripe
            return self._contract_view(existing)
        state = {
            "reference": reference,
            "number": f"FAKE-{request.tenant_id}-{request.invoice_id:06d}",
            "status": "open",
            "amount_minor": request.amount_minor,
            "currency": request.currency,
            "due_at": (timezone.now() + timedelta(days=request.days_until_due)).isoformat(),
            "row": request.invoice_id,
            "tenant": request.tenant_id,
        }
        cache.set(self._contract_key(reference), state, timeout=None)
        return self._contract_view(state)

    def contract_invoice_get(self, *, reference: str) -> GatewayContractInvoice:
        self.outside_transaction()
        return self._contract_view(self._load_contract_invoice(reference))
