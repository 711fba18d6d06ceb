"""How a tenant is billed (TenantBilling): its one currency, stored by its first subscription,
purchase or contract, and how its credits are shown to it."""

from decimal import Decimal

from billing.exceptions import InvalidCreditDisplay
from billing.models import TenantBilling
from billing.selectors import billing_currency_fixed


def billing_currency_claim(*, tenant_id: int, currency: str) -> str:
    """Store `currency` as the tenant's billing currency if it has none yet, and return the one
    it has (the caller refuses a subscription, purchase or contract in another, 422 naming
    `currency`). Two first purchases at once store one currency: the row is unique per tenant
    and only a blank one is filled."""
    currency = billing_currency_fixed(tenant_id=tenant_id) or currency.upper()
    row, created = TenantBilling.objects.get_or_create(
        tenant_id=tenant_id, defaults={"currency": currency}
    )
    if not created and not row.currency:
        TenantBilling.objects.filter(pk=row.pk, currency="").update(currency=currency)
        row.refresh_from_db(fields=["currency"])
    return row.currency


def credits_display_set(
    *, tenant_id: int, display: str, minor_per_credit: Decimal | None = None
) -> TenantBilling:
    """Show the tenant credits, or money at `minor_per_credit` minor units of its currency per
    credit (invisible credits); the ledger stays in credits."""
    shown = TenantBilling.Display(display)
    if shown == TenantBilling.Display.MONEY and not (minor_per_credit and minor_per_credit > 0):
        raise InvalidCreditDisplay(field="minor_per_credit")
    row, _ = TenantBilling.objects.get_or_create(tenant_id=tenant_id)
    row.credit_display = shown
    row.minor_per_credit = minor_per_credit
    row.save(update_fields=["credit_display", "minor_per_credit", "updated_at"])
    return row
