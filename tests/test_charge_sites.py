"""The promise to customers: "you cannot be charged more unless you choose to buy more".

Read statically, like tests/test_layers.py, so it sees every code path and not only those some
test runs: every call, anywhere in the project but the tests, of a gateway method that moves
money or makes a charge, subscription or invoice is listed here with what the customer did or
agreed to that starts it (a subscription, a purchase, auto top-up under its cap, contract
terms). A new call site, a new gateway method, or a Stripe request made outside the gateway
adapters fails until someone has reviewed it and said so below.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

from billing.gateways.base import PaymentGateway

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".venv", "var", "node_modules", ".git", "__pycache__", "tests", "migrations"}

# Every method of the gateway interface: what starts it when it moves money or makes a charge,
# a subscription or an invoice; None when it moves none (reads, cards, closing things).
GATEWAY_METHODS: dict[str, str | None] = {
    "checkout_create": "purchase (a checkout page the customer pays)",
    "charge_off_session": "auto top-up under its cap",
    "subscription_create": "subscription",
    "subscription_change_now": "subscription (an upgrade, more seats)",
    "subscription_change_at_period_end": "subscription (a downgrade, fewer seats)",
    "refund_create": "money back to the customer (the vendor's refund)",
    "contract_invoice_create": "contract terms",
    "checkout_expire": None,
    "receipt_url": None,
    "card_setup_create": None,
    "card_get": None,
    "card_make_default": None,
    "card_detach": None,
    "customer_create": None,
    "payment_status": None,
    "cancel_payment": None,
    "subscription_cancel_at_period_end": None,
    "subscription_get": None,
    "contract_invoice_get": None,
}
# Contract invoicing is being added to the gateway (another change): its methods are listed
# above, and the test holds whether or not they exist yet.
NOT_YET_REQUIRED = {"contract_invoice_create", "contract_invoice_get"}
CHARGING = {name for name, why in GATEWAY_METHODS.items() if why}

# (file, function, gateway method) → the customer's action or opt-in that starts the call.
REVIEWED: dict[tuple[str, str, str], str] = {
    ("billing/services/topups.py", "topup_checkout_start", "checkout_create"): (
        "purchase: the customer buys a pack (POST /api/v1/top-ups, the portal's Buy page) "
        "and pays on the checkout page; nothing is taken unless they pay"
    ),
    ("billing/services/autotopup.py", "auto_topup_charge", "charge_off_session"): (
        "auto top-up under its cap: the customer turned it on with a threshold, a pack and a "
        "monthly cap; auto_topup_start writes the pending top-up only under the cap "
        "(tests/billing/test_auto_topup.py), and a refunded or disputed one turns it off"
    ),
    ("billing/services/subscriptions.py", "_subscription_request", "subscription_create"): (
        "subscription: the customer subscribes to a plan (POST /api/v1/subscription, portal)"
    ),
    ("billing/services/subscriptions.py", "subscription_change", "subscription_change_now"): (
        "subscription: the customer upgrades or adds seats (PATCH /api/v1/subscription)"
    ),
    (
        "billing/services/subscriptions.py",
        "subscription_change",
        "subscription_change_at_period_end",
    ): "subscription: the customer downgrades or removes seats (lowers the next invoices)",
    ("billing/services/refunds.py", "topup_refund", "refund_create"): (
        "no charge: the vendor gives a top-up's money back (admin action)"
    ),
}
# Listed when they appear (contract invoicing is being added by another change).
REVIEWED_WHEN_PRESENT: dict[tuple[str, str, str], str] = {
    (
        "billing/services/contract_invoices.py",
        "contract_invoice_issue",
        "contract_invoice_create",
    ): (
        "contract terms: the commitment tranches and the overdraft used, at the prices the "
        "customer signed (billing.Contract), on its net terms"
    ),
}

# Stripe requests that take money or make a charge, a subscription or an invoice.
STRIPE_CHARGING = {
    "payment_intents.create",
    "payment_intents.confirm",
    "payment_intents.capture",
    "checkout.sessions.create",
    "subscriptions.create",
    "subscriptions.update",
    "subscription_schedules.create",
    "subscription_schedules.update",
    "invoices.create",
    "invoice_items.create",
    "invoices.finalize_invoice",
    "invoices.pay",
    "invoices.send_invoice",
    "refunds.create",
}
# Such requests made by a gateway method that charges nothing, and why.
STRIPE_REVIEWED_EXCEPTIONS = {
    ("card_setup_create", "checkout.sessions.create"): "a Checkout in setup mode saves a card",
    ("subscription_cancel_at_period_end", "subscriptions.update"): "sets cancel_at_period_end",
}
# Methods of the Stripe adapter alone (not of the gateway interface) that only read.
STRIPE_READ_HELPERS = {"_intent_of", "invoice_of_payment"}


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if SKIP_DIRS & set(relative.parts[:-1]):
            continue
        yield relative.as_posix(), ast.parse(path.read_text(), filename=str(path))


def _chain(node: ast.expr) -> list[str]:
    """`self.client.v1.refunds.create` → ["self", "client", "v1", "refunds", "create"];
    `gateway_get(name).refund_create` → ["<expr>", "refund_create"]."""
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    names.append(node.id if isinstance(node, ast.Name) else "<expr>")
    return names[::-1]


def _calls(tree: ast.Module) -> Iterator[tuple[str, list[str]]]:
    """Every call's dotted name with the function it is in (innermost); a local bound to a
    dotted name (`schedules = self.client.v1.subscription_schedules`) is followed."""

    def walk(
        node: ast.AST, function: str, aliases: dict[str, list[str]]
    ) -> Iterator[tuple[str, list[str]]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(child, child.name, {})
                continue
            if isinstance(child, ast.Assign) and len(child.targets) == 1:
                target = child.targets[0]
                if isinstance(target, ast.Name) and isinstance(child.value, ast.Attribute):
                    aliases[target.id] = _chain(child.value)
            if isinstance(child, ast.Call):
                names = _chain(child.func)
                if names and names[0] in aliases:
                    names = aliases[names[0]] + names[1:]
                yield function, names
            yield from walk(child, function, aliases)

    yield from walk(tree, "<module>", {})


def _gateway_call_sites() -> set[tuple[str, str, str]]:
    found = set()
    for path, tree in _sources():
        if path.startswith("billing/gateways/"):
            continue
        for function, names in _calls(tree):
            if len(names) >= 2 and names[-1] in CHARGING:
                found.add((path, function, names[-1]))
    return found


def test_every_gateway_method_is_classified() -> None:
    interface = set(PaymentGateway.__abstractmethods__)

    assert sorted(interface - set(GATEWAY_METHODS)) == []
    assert sorted(set(GATEWAY_METHODS) - interface - NOT_YET_REQUIRED) == []


def test_every_call_that_can_charge_names_what_the_customer_chose() -> None:
    found = _gateway_call_sites()
    optional = {site for site in found if site in REVIEWED_WHEN_PRESENT}

    assert sorted(found - set(REVIEWED) - optional) == [], "an unreviewed call site"
    assert sorted(set(REVIEWED) - found) == [], "a reviewed call site is gone: update the list"


def _stripe_request_reviewed(function: str, request: str) -> bool:
    """Whether a Stripe request made in the adapter's `function` is accounted for above."""
    if function in STRIPE_READ_HELPERS:
        return request.split(".")[-1] in {"retrieve", "search", "list"}
    if function not in GATEWAY_METHODS:
        return False
    if request in STRIPE_CHARGING and function not in CHARGING:
        return (function, request) in STRIPE_REVIEWED_EXCEPTIONS
    return True


def test_stripe_is_called_only_by_the_gateway_adapters_and_charges_only_where_listed() -> None:
    outside, unlisted = [], []
    for path, tree in _sources():
        for function, names in _calls(tree):
            if "v1" not in names and names[-1:] != ["StripeClient"]:
                continue
            if not path.startswith("billing/gateways/stripe"):
                outside.append((path, function, ".".join(names)))
            elif "v1" in names:
                request = ".".join(names[names.index("v1") + 1 :])
                if not _stripe_request_reviewed(function, request):
                    unlisted.append((path, function, request))

    assert outside == []
    assert unlisted == []


def test_the_walk_sees_what_it_claims() -> None:
    """The walk itself: an alias is followed, and nested functions are named."""
    tree = ast.parse(
        "def outer(gw):\n"
        "    s = self.client.v1.subscription_schedules\n"
        "    s.create(params={})\n"
        "    def inner():\n"
        "        gw.charge_off_session(top_up=t)\n"
    )
    calls = list(_calls(tree))

    assert ("outer", ["self", "client", "v1", "subscription_schedules", "create"]) in calls
    assert ("inner", ["gw", "charge_off_session"]) in calls
