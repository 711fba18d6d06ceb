"""The customer portal's pages that billing sends a customer to: a gateway's return and cancel
addresses, the link in an auto top-up that needs the customer, the API's receipt links, the old
`/billing/...` addresses that moved.

Billing does not import the portal (docs/architecture.md, "Apps and layers"), so it names the
paths here, once; tests/billing/test_portal_roles.py checks each resolves to the portal page.
"""

BUY = "/buy/"
PAYMENT_METHODS = "/payment-methods/"
AUTO_TOP_UP = "/auto-top-up/"
PLAN = "/plan/"
# The session key under which the portal remembers the tenant it shows (portal/base.py).
TENANT_SESSION_KEY = "portal_tenant"


def receipt(top_up_id: int) -> str:
    """A paid top-up's receipt: the portal records the gateway's address and goes there."""
    return f"/buy/receipts/{top_up_id}/"


def top_up_pay(top_up_id: int) -> str:
    return f"/buy/{top_up_id}/pay/"


def top_up_cancel(top_up_id: int) -> str:
    return f"/buy/{top_up_id}/cancel/"
