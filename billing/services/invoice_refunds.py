"""A refunded subscription or contract invoice takes back the credits it paid for, as a
refunded pack does (billing/services/refunds.py): the credits its grant gave, in proportion to
the share of the invoice refunded, leave what is left of that grant's bucket by
`ledger_grant_revoke`; what was already spent (or expired with its period) stays spent and is
recorded on the invoice, for the vendor.

- a subscription's period invoice: that period's included credits (`sub:<id>:<period>`);
- a subscription's change invoice (an upgrade, more seats): the prorated credits it granted
  (`sub:<id>:<period>:change:<invoice>`);
- a contract's commitment invoice: its tranche (`contract:<id>:<tranche>`), whether the
  credits came at signature or on payment (the money that paid for them went back);
- a contract's overdraft invoice granted nothing: its refund forgives the overdraft it charged
  and is recorded only.

A lost dispute of the invoice's payment (Stripe's `charge.dispute.closed`, status `lost`) is
the whole amount gone back, taken back the same way and recorded as such (`refund_reason`).
The billing contacts get the e-mail a refunded top-up sends (the money back, the credits
removed); no webhook event yet (`topup.refunded` names a top-up).

Idempotent as a top-up's refund: it acts only on money not yet recorded on the invoice (Stripe's
cumulative `amount_refunded`), under the account's lock, then the subscription's or contract's
(the lock order: an invoice changes only under its subscription's or contract's lock).
"""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.locks import contract_lock, subscription_lock_by_id
from billing.models import ContractInvoice, RefundReason, SubscriptionInvoice
from billing.money import money_format
from billing.services.notify import email_enqueue
from billing.services.refunds import CUSTOMER_REASON, credits_for_share
from ledger.exceptions import NotReversible
from ledger.locks import account_lock
from ledger.services import ledger_grant_revoke

Invoice = SubscriptionInvoice | ContractInvoice
ZERO = Decimal(0)


def invoice_take_back(
    *,
    invoice: Invoice,
    refunded_minor: int | None = None,
    disputed_minor: int = 0,
    reason: str = RefundReason.REFUND,
    refund_reference: str = "",
) -> Invoice:
    """`refunded_minor` of the invoice has gone back to the customer in all, or a lost dispute
    took `disputed_minor` on top of what was refunded before it (applied once per dispute, its
    id the `refund_reference`): take back the credits that share paid for. Only a paid invoice
    granted anything."""
    reason = RefundReason(reason)
    with transaction.atomic(durable=True):
        account_lock(tenant_id=invoice.tenant_id)
        locked = _lock(invoice)
        if disputed_minor and refund_reference and locked.refund_reference == refund_reference:
            return locked  # this dispute was applied already (Stripe may send it twice)
        refunded_minor = min(
            (locked.refunded_minor if refunded_minor is None else refunded_minor) + disputed_minor,
            locked.amount_minor,
        )
        if locked.status != "paid" or refunded_minor <= locked.refunded_minor:
            return locked
        reference = _grant_reference(locked)
        credits = credits_for_share(locked.credits or ZERO, locked.amount_minor, refunded_minor)
        due = credits - locked.credits_taken_back - locked.credits_owed
        if reference and due > 0:
            try:
                revoked = ledger_grant_revoke(
                    tenant=locked.tenant,
                    external_reference=reference,
                    credits=due,
                    idempotency_key=f"takeback:{reference}:{refunded_minor}",
                    source_type=f"billing.{type(locked).__name__.lower()}",
                    source_id=str(locked.pk),
                    memo=f"{reason.label}: {money_format(refunded_minor, locked.currency)}.",
                )
            except NotReversible:
                pass  # no grant was made for it (granted before it was linked): nothing to take
            else:
                locked.credits_taken_back += revoked.taken
                locked.credits_owed += revoked.short
        locked.refunded_minor = refunded_minor
        locked.refund_reason = reason
        locked.refund_reference = refund_reference or locked.refund_reference
        locked.refunded_at = timezone.now()
        locked.save(
            update_fields=[
                "refunded_minor",
                "credits_taken_back",
                "credits_owed",
                "refund_reason",
                "refund_reference",
                "refunded_at",
            ]
        )
        _tell(locked)
    return locked


def _tell(invoice: Invoice) -> None:
    """The e-mail a refunded top-up sends, for an invoice (in the take-back's transaction)."""
    refunded = money_format(invoice.refunded_minor, invoice.currency)
    if isinstance(invoice, SubscriptionInvoice):
        what = f"your {invoice.plan.name} plan's invoice of {invoice.created_at:%Y-%m-%d}"
    else:
        number = f" {invoice.number}" if invoice.number else ""
        what = f"your contract {invoice.contract.name}'s invoice{number}"
    taken = (
        f"{invoice.credits_taken_back.normalize():f} unspent credits it paid for were removed "
        "from your balance."
        if _grant_reference(invoice)
        else "it paid for no credits, so none were removed from your balance."
    )
    email_enqueue(
        tenant_id=invoice.tenant_id,
        subject=f"{refunded} refunded",
        body=(
            f"{refunded} of {what} went back to you "
            f"({CUSTOMER_REASON[RefundReason(invoice.refund_reason)]}); {taken}"
        ),
    )


def _lock(invoice: Invoice) -> Invoice:
    if isinstance(invoice, SubscriptionInvoice):
        subscription_lock_by_id(
            tenant_id=invoice.tenant_id, subscription_id=invoice.subscription_id
        )
        return SubscriptionInvoice.objects.select_related("tenant", "plan").get(pk=invoice.pk)
    contract_lock(tenant_id=invoice.tenant_id, contract_id=invoice.contract_id)
    return ContractInvoice.objects.select_related("tenant", "contract").get(pk=invoice.pk)


def _grant_reference(invoice: Invoice) -> str:
    """The external reference of the grant the invoice paid for ("" when it paid for none)."""
    if isinstance(invoice, SubscriptionInvoice):
        period = f"sub:{invoice.subscription_id}:{invoice.period_index}"
        if invoice.kind == SubscriptionInvoice.Kind.PERIOD:
            return period
        return f"{period}:change:{invoice.pk}"
    if invoice.kind == ContractInvoice.Kind.COMMITMENT:
        return f"contract:{invoice.contract_id}:{invoice.period_index}"
    return ""
