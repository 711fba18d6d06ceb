"""Contracts invoice their money (DESIGN.md, "Billing collects what it grants").

Two kinds of ContractInvoice, each at most once per contract and period (a unique constraint):

- **commitment**: each tranche of the committed credits (one up front, or one a month) is
  invoiced when it falls due, at the contract's price, `send_invoice` due in the contract's net
  terms. Its credits come on the contract's terms (`Contract.credits_on`): at signature (the
  tranche is granted when due, as before invoicing existed: contracts.py) or when the invoice is
  paid (granted here, `contract:<id>:<tranche>` like any tranche, so never twice).
- **overage**: the overdraft a contract month (from `start_at`, like the tranches) left owing is
  invoiced in arrears at the overage price, and cleared in the ledger at once by a settlement
  that names the invoice (`ledger_overdraft_clear`), in the transaction that writes the row. An
  overdraft is so either repaid by a grant or invoiced, never both: a month's invoice takes what
  was owed at the month's end and is still owed (a grant since repaid the rest), and the tranche
  sweep invoices the months that ended before it grants the next tranche. When the contract
  ends, its last month takes everything still owed, so the tenant's next purchase is spendable
  in full. `Contract.overage_next_period` marks the months done: exactly once per month.

Contracts active before invoicing existed start with their next period
(`Contract.invoicing_from_period`, set by billing.0011).

The gateway is asked after the row commits (record the intent, then call; STYLE.md): the row
is written `requested` with the idempotency key every call for it carries, and an outbox task
issues it; a gateway that fails leaves the row `requested` with the error, and
`contract_invoices_due` asks again with the same key. A gateway error so never grants credits
and never half-writes a row. Its answer, Stripe's `invoice.paid` (dispatched here by
subscription_events.py, which owns the event type) and the sweep's reconciliation all end in
`contract_invoice_apply`, idempotent under the contract's lock. A contract's invoices change only
under its contract's row lock (after the account's: the lock order).
"""

import logging
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone

from billing import task_names
from billing.exceptions import GatewayError
from billing.gateways import gateway_get
from billing.gateways.base import PaymentGateway
from billing.gateways.contract_invoicing import ContractInvoiceRequest, GatewayContractInvoice
from billing.gateways.fake import FakeGateway
from billing.gateways.stripe_contracts import stripe_contract_invoice_read
from billing.locks import contract_lock
from billing.models import BillingCustomer, Contract, ContractInvoice, StripeEvent
from billing.money import money_format
from billing.selectors import billing_customer_get
from billing.services.stripe_payloads import MalformedEvent, ObjectReader
from billing.services.subscription_invoices import InvoiceTooEarly
from ledger.locks import account_lock
from ledger.models import CreditBucket
from ledger.periods import add_months
from ledger.selectors import overdraft_owed
from ledger.services import ledger_grant
from ledger.services.overdraft import ledger_overdraft_clear
from tenants.models import Tenant
from tenants.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

Kind = ContractInvoice.Kind
Status = ContractInvoice.Status
# Stripe's invoice statuses, mapped to ours (a draft is not issued yet).
STRIPE_STATUSES: dict[str, str] = {
    "draft": Status.REQUESTED,
    "open": Status.OPEN,
    "paid": Status.PAID,
    "void": Status.VOID,
    "uncollectible": Status.UNCOLLECTIBLE,
}
# A request the outbox has not issued this long after it was written is issued by the sweep.
ISSUE_AFTER = timedelta(minutes=2)
# A Stripe event naming a contract invoice we do not have is retried this long, then noted.
EARLY_EVENT_RETRIED = timedelta(days=1)
BATCH = 500


def _price(credits: Decimal, per_1000_minor: int) -> int:
    return int((credits * per_1000_minor / 1000).to_integral_value(ROUND_HALF_UP))


def contract_month(contract: Contract, index: int) -> tuple[datetime, datetime]:
    """Month `index` of the contract, from its start_at like the tranches, cut at end_at."""
    return add_months(contract.start_at, index), min(
        add_months(contract.start_at, index + 1), contract.end_at
    )


# Inside the caller's transaction, under the account's and the contract's locks.


def commitment_invoice_request(
    contract: Contract,
    *,
    index: int,
    credits: Decimal,
    price_minor: int,
    start: datetime,
    end: datetime,
    count: int,
    now: datetime,
) -> ContractInvoice | None:
    """The tranche's invoice, written `requested` once (None: before invoicing started)."""
    if index < contract.invoicing_from_period:
        return None
    existing = ContractInvoice.objects.filter(
        tenant_id=contract.tenant_id, contract=contract, kind=Kind.COMMITMENT, period_index=index
    ).first()
    if existing is not None:
        return existing
    price = money_format(contract.price_per_1000_minor, contract.currency)
    return _request(
        contract,
        kind=Kind.COMMITMENT,
        index=index,
        credits=credits,
        amount_minor=price_minor,
        description=(
            f"{contract.name}: committed credits, tranche {index + 1} of {count} "
            f"({credits.normalize():f} credits at {price} per 1,000)"
        ),
        start=start,
        end=end,
        now=now,
    )


def contract_overage_invoice(contract: Contract, *, now: datetime, final: bool = False) -> int:
    """Invoice the overdraft of every contract month that has ended by `now` and was not yet
    (with `final`, the contract has ended: its last month takes all that is still owed), clear
    it in the ledger and move the marker on. Returns how many invoices it wrote."""
    written = 0
    index = max(contract.overage_next_period, contract.invoicing_from_period)
    while True:
        start, end = contract_month(contract, index)
        if start >= contract.end_at or end > now:
            break
        last = end >= contract.end_at
        owed = overdraft_owed(tenant_id=contract.tenant_id)
        if not (final and last):
            owed = min(owed, overdraft_owed(tenant_id=contract.tenant_id, at=end))
        if owed > 0:
            _overage(contract, index=index, credits=owed, start=start, end=end, now=now)
            written += 1
        index += 1
    if index != contract.overage_next_period:
        contract.overage_next_period = index
        contract.save(update_fields=["overage_next_period"])
    return written


def _overage(
    contract: Contract,
    *,
    index: int,
    credits: Decimal,
    start: datetime,
    end: datetime,
    now: datetime,
) -> ContractInvoice:
    price = money_format(contract.overage_price, contract.currency)
    row = _request(
        contract,
        kind=Kind.OVERAGE,
        index=index,
        credits=credits,
        amount_minor=_price(credits, contract.overage_price),
        description=(
            f"{contract.name}: overdraft used {start:%Y-%m-%d} to {end:%Y-%m-%d} "
            f"({credits.normalize():f} credits at {price} per 1,000)"
        ),
        start=start,
        end=end,
        now=now,
    )
    ledger_overdraft_clear(
        tenant=contract.tenant,
        credits=credits,
        idempotency_key=f"overdraft-invoiced:{row.idempotency_key}",
        source_type="billing.contractinvoice",
        source_id=str(row.pk),
        memo=f"Overdraft invoiced: {row.description}",
    )
    return row


def _request(
    contract: Contract,
    *,
    kind: str,
    index: int,
    credits: Decimal,
    amount_minor: int,
    description: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> ContractInvoice:
    row = ContractInvoice.objects.create(
        tenant_id=contract.tenant_id,
        contract=contract,
        kind=kind,
        period_index=index,
        status=Status.REQUESTED,
        gateway=gateway_get().name,
        idempotency_key=f"contract-invoice:{contract.pk}:{kind}:{index}",
        description=description[:500],
        credits=credits,
        amount_minor=amount_minor,
        currency=contract.currency,
        period_start=start,
        period_end=end,
        created_at=now,
    )
    outbox_enqueue(
        task_names.CONTRACT_INVOICE_ISSUE, {"invoice_id": row.pk, "tenant_id": row.tenant_id}
    )
    return row


# Outside any transaction: the gateway.


def contract_invoice_issue(*, invoice_id: int, tenant_id: int) -> ContractInvoice:
    """Ask the gateway for the invoice (the same key every time) and apply its answer; a failure
    leaves the row `requested` with the error, for the sweep to ask again."""
    row = ContractInvoice.objects.select_related("contract", "tenant").get(
        pk=invoice_id, tenant_id=tenant_id
    )
    if row.status != Status.REQUESTED:
        return row
    gateway = gateway_get(row.gateway)
    try:
        customer_id = _customer_id(row.tenant, gateway)
        answer = gateway.contract_invoice_create(
            request=ContractInvoiceRequest(
                tenant_id=row.tenant_id,
                contract_id=row.contract_id,
                invoice_id=row.pk,
                customer_id=customer_id,
                description=row.description,
                amount_minor=row.amount_minor,
                currency=row.currency,
                days_until_due=row.contract.net_terms_days,
                idempotency_key=row.idempotency_key,
                requested_at=row.created_at,
            )
        )
    except GatewayError as exc:
        error = str(exc.details.get("detail") or exc.message)
        logger.warning("contract invoice %s: the gateway failed: %s", row.pk, error)
        ContractInvoice.objects.filter(pk=row.pk, status=Status.REQUESTED).update(error=error)
        row.refresh_from_db()
        return row
    return contract_invoice_apply(invoice_id=row.pk, tenant_id=row.tenant_id, invoice=answer)


def _customer_id(tenant: Tenant, gateway: PaymentGateway) -> str:
    """The tenant at the gateway, made once (the same key every time, as subscriptions do)."""
    found = billing_customer_get(tenant_id=tenant.pk)
    if found is not None and found.gateway == gateway.name:
        return found.customer_id
    customer_id = gateway.customer_create(
        tenant_id=tenant.pk, name=tenant.name, idempotency_key=f"customer:{tenant.pk}"
    )
    BillingCustomer.objects.get_or_create(
        tenant=tenant, defaults={"gateway": gateway.name, "customer_id": customer_id}
    )
    return customer_id


def contract_invoice_apply(
    *, invoice_id: int, tenant_id: int, invoice: GatewayContractInvoice
) -> ContractInvoice:
    """Record what the gateway says of the invoice and do what it means, once: a commitment
    paid on payment terms grants its tranche."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        account_lock(tenant_id=tenant_id)
        contract_id = ContractInvoice.objects.values_list("contract_id", flat=True).get(
            pk=invoice_id, tenant_id=tenant_id
        )
        contract = contract_lock(tenant_id=tenant_id, contract_id=contract_id)
        row = ContractInvoice.objects.get(pk=invoice_id, tenant_id=tenant_id)
        if row.status in (Status.PAID, Status.VOID):
            return row
        if row.gateway_reference and row.gateway_reference != invoice.reference:
            logger.warning(
                "contract invoice %s is %s, not %s",
                row.pk,
                row.gateway_reference,
                invoice.reference,
            )
            return row
        row.gateway_reference = invoice.reference
        row.number = invoice.number or row.number
        row.hosted_url = invoice.hosted_url or row.hosted_url
        row.due_at = invoice.due_at or row.due_at
        row.status = STRIPE_STATUSES.get(invoice.status, Status.OPEN)
        row.error = ""
        if row.status == Status.PAID:
            row.paid_at = now
            if (invoice.amount_minor, invoice.currency) != (row.amount_minor, row.currency):
                # Never grant credits for a payment that is not the invoice's amount.
                row.error = (
                    f"Paid {money_format(invoice.amount_minor, invoice.currency)}, "
                    f"invoiced {money_format(row.amount_minor, row.currency)}."
                )
            elif row.kind == Kind.COMMITMENT and contract.credits_on == Contract.CreditsOn.PAYMENT:
                _grant_paid(contract, row, now)
        row.save()
    return row


def _grant_paid(contract: Contract, row: ContractInvoice, now: datetime) -> None:
    ledger_grant(
        tenant=contract.tenant,
        credits=row.credits,
        policy=CreditBucket.Policy.ROLLING_12M,
        source=CreditBucket.Source.CONTRACT,
        external_reference=f"contract:{contract.pk}:{row.period_index}",
        granted_at=now,
        price_minor=row.amount_minor,
        currency=row.currency,
        source_type="billing.contract",
        source_id=str(contract.pk),
        memo=f"{contract.name}: tranche {row.period_index + 1}, invoice {row.number} paid",
    )


# Stripe's invoice events for contract invoices (subscription_events.py hands them over).


def contract_invoice_event(obj: ObjectReader, event: StripeEvent) -> str:
    try:
        invoice = stripe_contract_invoice_read(obj.obj)
    except ValueError as exc:
        raise MalformedEvent(f"data.object: {exc}") from None
    row_id, tenant_id = invoice.invoice_id, invoice.tenant_id
    if row_id is None or tenant_id is None:
        return "The invoice's metadata names no tenant."
    row = ContractInvoice.objects.filter(pk=row_id, tenant_id=tenant_id, gateway="stripe").first()
    if row is None:
        ours = Tenant.objects.filter(pk=tenant_id).exists()
        if ours and timezone.now() - event.received_at < EARLY_EVENT_RETRIED:
            # Its row is not there (yet): the event stays unprocessed and is retried.
            raise InvoiceTooEarly(f"Contract invoice {row_id} is not recorded yet.")
        return "No contract invoice of ours matches this event."
    contract_invoice_apply(invoice_id=row.pk, tenant_id=row.tenant_id, invoice=invoice)
    return ""


# The sweep (Celery beat, daily).


def contract_invoices_due(*, now: datetime | None = None) -> dict[str, int]:
    """Invoice the overdraft of every contract month that has ended, issue what the outbox did
    not, and ask the gateway about the open invoices (a missed webhook; the fake's only path)."""
    now = now or timezone.now()
    return {
        "overage": contract_overage_due(now=now),
        "issued": contract_invoices_issue_due(now=now),
        "paid": contract_invoices_reconcile(),
    }


def contract_overage_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    written = 0
    due = Contract.objects.filter(status=Contract.Status.ACTIVE, start_at__lte=now)
    for pk, tenant_id in due.values_list("pk", "tenant_id"):
        try:
            with transaction.atomic(durable=True):
                account_lock(tenant_id=tenant_id)
                contract = contract_lock(tenant_id=tenant_id, contract_id=pk)
                if contract.status == Contract.Status.ACTIVE:
                    written += contract_overage_invoice(contract, now=now)
        except Exception:
            # One contract that cannot be invoiced (an edited row) must not starve the others.
            logger.exception("contract %s: invoicing its overdraft failed", pk)
    return written


def contract_invoices_issue_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    waiting = ContractInvoice.objects.filter(
        status=Status.REQUESTED, created_at__lt=now - ISSUE_AFTER
    ).order_by("pk")
    issued = 0
    for pk, tenant_id in waiting.values_list("pk", "tenant_id")[:BATCH]:
        row = contract_invoice_issue(invoice_id=pk, tenant_id=tenant_id)
        issued += row.status != Status.REQUESTED
    return issued


def fake_contract_invoice_pay(*, invoice: ContractInvoice) -> ContractInvoice:
    """The fake gateway's "Pay" button on its contract invoice page: the customer pays the open
    invoice, and it is applied as the gateway's answer always is (contract_invoice_apply).
    Paying a paid one changes nothing."""
    if invoice.gateway != FakeGateway.name or not invoice.gateway_reference:
        raise GatewayError("Only an issued fake-gateway invoice can be paid here.")
    if invoice.status == Status.OPEN:
        FakeGateway.contract_invoice_pay(reference=invoice.gateway_reference)
    answer = FakeGateway().contract_invoice_get(reference=invoice.gateway_reference)
    return contract_invoice_apply(
        invoice_id=invoice.pk, tenant_id=invoice.tenant_id, invoice=answer
    )


def contract_invoices_reconcile() -> int:
    """Apply what the gateway says of every open contract invoice; returns how many were paid."""
    open_rows = ContractInvoice.objects.filter(status__in=(Status.OPEN, Status.UNCOLLECTIBLE))
    paid = 0
    for pk, tenant_id, gateway, reference in open_rows.values_list(
        "pk", "tenant_id", "gateway", "gateway_reference"
    ).order_by("pk")[:BATCH]:
        try:
            answer = gateway_get(gateway).contract_invoice_get(reference=reference)
        except GatewayError:
            logger.warning("contract invoice %s: the gateway did not answer", pk)
            continue
        row = contract_invoice_apply(invoice_id=pk, tenant_id=tenant_id, invoice=answer)
        paid += row.status == Status.PAID
    return paid
