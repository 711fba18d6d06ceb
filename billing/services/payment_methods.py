"""The tenant's saved card: added or replaced through the gateway's hosted setup page, shown as
brand, last 4 and expiry (never the gateway's id), removed on request.

Every gateway call runs outside a database transaction with an idempotency key; the row is
written after the gateway has answered, so a gateway error leaves the saved card as it was.
"""

import logging
import uuid

from billing.exceptions import GatewayError, PaymentMethodInUse, PaymentMethodNotFound
from billing.gateways import CheckoutSession, gateway_get
from billing.models import AutoTopUpPolicy, BillingCustomer
from billing.selectors import billing_customer_get
from billing.services.topups import billing_customer_save
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def payment_method_setup_start(
    *, tenant: Tenant, success_url: str, cancel_url: str
) -> CheckoutSession:
    """The page where the customer enters a card (to add one or replace the saved one). The
    gateway's webhook (Stripe: setup_intent.succeeded) saves it with payment_method_save."""
    gateway = gateway_get()
    customer = billing_customer_get(tenant_id=tenant.pk)
    if customer is None or customer.gateway != gateway.name:
        customer_id = gateway.customer_create(
            tenant_id=tenant.pk, name=tenant.name, idempotency_key=f"customer:{tenant.pk}"
        )
        customer, _ = BillingCustomer.objects.update_or_create(
            tenant=tenant,
            defaults={"gateway": gateway.name, "customer_id": customer_id, "payment_method_id": ""},
        )
    return gateway.card_setup_create(
        tenant_id=tenant.pk,
        customer_id=customer.customer_id,
        success_url=success_url,
        cancel_url=cancel_url,
        idempotency_key=f"setup:{tenant.pk}:{uuid.uuid4().hex}",
    )


def payment_method_save(
    *, tenant: Tenant, gateway: str, customer_id: str, payment_method_id: str
) -> BillingCustomer:
    """A card the customer set up becomes the tenant's default: its details are read from the
    gateway, it is made the default there, and the card it replaces is detached. Saving the
    same card again changes nothing."""
    current = billing_customer_get(tenant_id=tenant.pk)
    if current is not None and current.payment_method_id == payment_method_id:
        return current
    client = gateway_get(gateway)
    card = client.card_get(payment_method_id=payment_method_id)
    client.card_make_default(
        customer_id=customer_id,
        payment_method_id=payment_method_id,
        idempotency_key=f"default:{tenant.pk}:{payment_method_id}",
    )
    saved = billing_customer_save(
        tenant=tenant,
        gateway=gateway,
        customer_id=customer_id,
        payment_method_id=payment_method_id,
        card=card,
    )
    replaced = current.payment_method_id if current is not None else ""
    if replaced and current is not None and current.gateway == gateway:
        _detach(gateway, replaced)
    return saved


def payment_method_remove(*, tenant: Tenant) -> None:
    """Forget the saved card (detached at the gateway first). Refused while auto top-up is on:
    it would fail at its next charge."""
    customer = billing_customer_get(tenant_id=tenant.pk)
    if customer is None or not customer.payment_method_id:
        raise PaymentMethodNotFound()
    if AutoTopUpPolicy.objects.filter(tenant=tenant, enabled=True).exists():
        raise PaymentMethodInUse()
    gateway_get(customer.gateway).card_detach(
        payment_method_id=customer.payment_method_id,
        idempotency_key=f"detach:{customer.payment_method_id}",
    )
    BillingCustomer.objects.filter(pk=customer.pk).update(
        payment_method_id="", card_brand="", card_last4="", card_exp_month=None, card_exp_year=None
    )


def _detach(gateway: str, payment_method_id: str) -> None:
    try:
        gateway_get(gateway).card_detach(
            payment_method_id=payment_method_id, idempotency_key=f"detach:{payment_method_id}"
        )
    except GatewayError:
        # The new card is saved either way; an old one left attached is never charged by us.
        logger.warning("could not detach replaced card %s", payment_method_id, exc_info=True)
