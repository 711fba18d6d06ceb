"""Bad input never finds a 500 in the web pages (the REST API has tests/test_schemathesis.py).

Every URL pattern of config/urls.py outside /api/ and /admin/ is walked, read from the URLconf
so a new route is walked without a change here: the portal and billing's pages as the owner of
a seeded tenant, the console (/console/) as a superuser, the public pages (the estimator, the
login page, /healthz) as anyone. A route whose path takes a parameter this file cannot fill
fails the walk until `_path_values` learns it.

- GET: first plainly, to learn which query parameters the view reads (every read of
  request.GET is recorded), then with each of those set to each hostile value (huge and
  negative numbers, digits that are not ASCII, dates that do not exist or overflow, NUL bytes,
  bytes that are no UTF-8 or a lone surrogate's, long strings, repeated parameters, unknown sort
  keys, garbage cursors), alone and all at once, and as htmx asks for a part; and with hostile
  path parameters (another tenant's ids, ids past bigint, NULs, garbage tokens).
- PUT, DELETE, PATCH, OPTIONS and HEAD, which no page takes, once each.
- The estimator's rows (parallel lists of any length, the one form whose shape varies) are
  drawn by hypothesis (derandomized, 40 examples).
- POST to every route that takes one: an empty body, a raw body that is no UTF-8, and a valid
  body (`_bodies`, else the fields the view reads from an empty one) with each field missing,
  and set to a NUL, a number past any column, a long string and two other bad values in
  turn (`_bad_values`). Each request runs in a savepoint rolled back after it, so no request
  changes what the next one finds.

Every answer is below 500. A bad value posted to a form that moves money or terms (`MONEY`)
changes nothing (balances, ledger, top-ups, subscription, contracts, rates) and is not a 200.

Bounded: fixed lists (no random draws: the same requests every run), one seed per test;
about 3,000 requests, 50 s on a busy 2-core machine.
"""

import re
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.http import QueryDict
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.datastructures import MultiValueDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.gateways import PaymentGateway
from billing.models import (
    AutoTopUpPolicy,
    BillingCustomer,
    Contract,
    ContractInvoice,
    CreditPack,
    Subscription,
    SubscriptionInvoice,
    TopUp,
)
from billing.services import topup_create, webhook_endpoint_create
from insights.models import ExchangeRate
from insights.rollup import insights_rollup_update
from insights.simulator import simulation_request
from ledger.models import LedgerEntry
from ledger.selectors import available_get
from metering.models import UsageEvent
from metering.workflows import workflow_start
from ratecards.models import RateCardVersion
from ratecards.services import ratecard_seed_example
from tenants.models import ApiKey, Invitation, Membership, Tenant
from tenants.services import api_key_create, membership_add, membership_invite
from tests.isolation import seed
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db

_KWARG = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")
SKIPPED_PREFIXES = ("api/", "admin/")  # the API is schemathesis's; the admin is Django's
PUBLIC = ("pricing/", "accounts/", "healthz")
CONSOLE = "console/"

# Query values, percent-encoded as they arrive: %ED%A0%80 is a lone surrogate in UTF-8's
# spelling, %FF no UTF-8 at all; %C2%B2 is "²" (str.isdigit() says yes, int() no).
LONG = "x" * 5000
QUERY_VALUES = [
    "",
    "0",
    "-1",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "sNaN",
    "%C2%B2",
    "abc",
    "2026-02-30",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "%00",
    "%ED%A0%80",
    "%FF",
    LONG,
    "%3Cscript%3E",
    "desc",
    "csv",
    "progress",
    "all",
    "day",
    "model_class",
]
# Each parameter alone: the values that broke something once.
SHARP_VALUES = [
    "-1",
    "99999999999999999999999999",
    "sNaN",
    "%C2%B2",
    "0001-01-01",
    "9999-12-31",
    "%00",
    "%ED%A0%80",
]
# Values a form that moves money must refuse, whatever the field.
BAD_VALUES = [
    "-1",
    "99999999999999999999999999",
    "NaN",
    "%C2%B2",
    "abc",
    "9999-12-31",
    "%00",
    "%ED%A0%80",
    LONG,
]
HTMX = {"HX-Request": "true", "HX-Target": "%00", "HX-Current-URL": LONG}
# Path parameters: the real one is tried too, and another tenant's (`Seeded.others`).
PATH_VALUES = {
    "int": ["0", "99999999999999999999999"],
    "str": ["%00", "%ED%A0%80", LONG[:3000], "garbage", "a.b.c"],
}


@dataclass
class Seeded:
    tenant: Tenant
    other: Tenant
    values: dict[str, str]  # the tenant's ids by path parameter name
    others: dict[str, str]  # another tenant's, where the owner must get a 404 (or 403)
    owner: Client
    staff: Client
    anonymous: Client


@dataclass
class Finding:
    url: str
    method: str
    body: str
    problem: str


@dataclass
class Walk:
    findings: list[Finding] = field(default_factory=list)
    requests: int = 0


@dataclass(frozen=True)
class Route:
    template: str  # "buy/<int:top_up_id>/pay/"
    name: str
    methods: tuple[str, ...]

    @property
    def kwargs(self) -> list[tuple[str, str]]:
        return [
            (m.group("name"), m.group("converter") or "str") for m in _KWARG.finditer(self.template)
        ]

    def url(self, values: dict[str, str]) -> str:
        return "/" + _KWARG.sub(lambda m: values[m.group("name")], self.template)


def _methods(callback: Any) -> tuple[str, ...]:
    view = getattr(callback, "view_class", None)
    if view is None:  # a function view: both
        return ("GET", "POST")
    names = [m for m in ("get", "post") if m in view.http_method_names and hasattr(view, m)]
    return tuple(m.upper() for m in names)


def page_routes() -> list[Route]:
    """Every route of the site's URLconf that serves web pages."""
    found: list[Route] = []

    def walk(patterns: list[Any], prefix: str, namespace: str) -> None:
        for entry in patterns:
            segment = str(entry.pattern)
            if isinstance(entry, URLResolver):
                ns = entry.namespace or namespace
                walk(entry.url_patterns, prefix + segment, ns)
            elif isinstance(entry, URLPattern):
                template = prefix + segment
                if template.startswith(SKIPPED_PREFIXES) or template.startswith("^api"):
                    continue
                name = entry.name or template
                name = f"{namespace}:{name}" if namespace and entry.name else name
                found.append(Route(template, name, _methods(entry.callback)))

    walk(get_resolver("config.urls").url_patterns, "", "")
    return sorted(found, key=lambda r: r.template)


ROUTES = page_routes()


# What the requests read: every key a view asks a QueryDict for.


class _Reads:
    keys: set[str] | None = None


def _recording(method: Callable[..., Any]) -> Callable[..., Any]:
    def read(self: MultiValueDict, key: Any, *args: Any, **kwargs: Any) -> Any:
        if _Reads.keys is not None and isinstance(self, QueryDict):
            _Reads.keys.add(str(key))
        return method(self, key, *args, **kwargs)

    return read


@pytest.fixture(autouse=True)
def _record_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("__getitem__", "get", "getlist", "__contains__"):
        monkeypatch.setattr(QueryDict, name, _recording(getattr(MultiValueDict, name)))


@contextmanager
def reads() -> Iterator[set[str]]:
    _Reads.keys = set()
    try:
        yield _Reads.keys
    finally:
        _Reads.keys = None


@contextmanager
def rolled_back() -> Iterator[None]:
    """A savepoint undone after the request. Marked as the test case's own, so the services'
    durable blocks run inside it as they run inside the test's transaction."""
    with transaction.atomic():
        connection.atomic_blocks[-1]._from_testcase = True  # type: ignore[attr-defined]
        yield
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _gateway_calls_inside_the_test_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in tests/test_schemathesis.py: the fake gateway's calls run inside the test's
    # transaction, whose guard has its own tests.
    monkeypatch.setattr(PaymentGateway, "outside_transaction", staticmethod(lambda: None))


@pytest.fixture
def seeded(tenant: Tenant, other_tenant: Tenant, settings: Any) -> Seeded:
    settings.AXES_ENABLED = False  # the login page's lockout is tested on its own
    with time_machine.travel("2026-01-15 12:00:00+00:00", tick=False):
        values = seed(tenant)
        fund(tenant, 1000, reference="fuzz-pack", price_minor=1000)
        insights_rollup_update()
    owner_user = User.objects.create_user("fuzz-owner", email="owner@acme.test")
    me = membership_add(tenant=tenant, user=owner_user, role=Membership.Role.OWNER)
    admin_user = User.objects.create_user("fuzz-admin", email="admin@acme.test")
    admin = membership_add(tenant=tenant, user=admin_user, role=Membership.Role.ADMIN)
    token = membership_invite(actor=me, email="new@acme.test", role="member", link=str)
    values |= _path_values(tenant, admin, token)
    others = _other_tenants_ids(other_tenant)
    staff = User.objects.create_superuser("fuzz-vendor", email="vendor@example.test")
    clients = []
    for user in (owner_user, staff):
        client = Client()
        client.force_login(user)
        clients.append(client)
    return Seeded(tenant, other_tenant, values, others, clients[0], clients[1], Client())


def _path_values(tenant: Tenant, admin: Membership, token: str) -> dict[str, str]:
    """The path parameters the seeders of tests/<app>/isolation.py leave out."""
    version = RateCardVersion.objects.filter(status="published").order_by("pk").first()
    assert version is not None
    contract = Contract.objects.filter(tenant=tenant).get()
    invoice = ContractInvoice.objects.filter(tenant=tenant).get()
    simulation = simulation_request(user=None, version=version, cost_catalog=None)
    sub_invoice = SubscriptionInvoice.objects.filter(tenant=tenant).get()
    return {
        "key_id": str(ApiKey.objects.filter(tenant=tenant).order_by("pk").first().pk),  # type: ignore[union-attr]
        "membership_id": str(admin.pk),
        "invitation_id": str(Invitation.objects.get(tenant=tenant, email="new@acme.test").pk),
        "token": token,
        "tenant_id": str(tenant.pk),
        "contract_id": str(contract.pk),
        "invoice_id": str(invoice.pk),
        "version_id": str(version.pk),
        "simulation_id": str(simulation.pk),
        "reference": sub_invoice.gateway_reference,
    }


def _other_tenants_ids(other: Tenant) -> dict[str, str]:
    """Rows of another tenant the owner must never reach through a path."""
    ratecard_seed_example()
    fund(other, 10, reference="other-pack")
    pack = CreditPack.objects.get(slug="isolation-pack")  # tests/billing/isolation.py's
    pack_top_up = topup_create(tenant=other, pack=pack, gateway="fake")
    endpoint = webhook_endpoint_create(tenant=other, url="https://other.example/hooks")
    run, _ = workflow_start(
        tenant=other, external_id="other-run", name="other", reserve_credits=None, metadata={}
    )
    user = User.objects.create_user("other-owner", email="owner@globex.test")
    membership = membership_add(tenant=other, user=user, role=Membership.Role.OWNER)
    membership_invite(actor=membership, email="new@globex.test", role="member", link=str)
    return {
        "invitation_id": str(Invitation.objects.get(tenant=other).pk),
        "top_up_id": str(pack_top_up.pk),
        "endpoint_id": str(endpoint.pk),
        "workflow_id": str(run.pk),
        "key_id": str(api_key_create(tenant=other, name="other").api_key.pk),
        "membership_id": str(membership.pk),
    }


def _client_for(route: Route, seeded: Seeded) -> Client:
    if route.template.startswith(CONSOLE):
        return seeded.staff
    if route.template.startswith(PUBLIC):
        return seeded.anonymous
    return seeded.owner


def _send(
    walk: Walk,
    client: Client,
    method: str,
    url: str,
    body: str | None = None,
    inspect: Callable[[Any], None] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """One request in a savepoint rolled back after it (`inspect` looks at the response and
    the database before that); an exception or a 5xx is a finding."""
    walk.requests += 1
    shown = (body or "")[:200]
    try:
        with rolled_back():
            if method == "GET":
                response = client.get(url, headers=headers)
            elif method != "POST":  # a method no page takes
                response = client.generic(method, url, body or "", headers=headers)
            else:
                response = client.post(
                    url,
                    data=body or "",
                    content_type="application/x-www-form-urlencoded",
                    headers=headers,
                )
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)  # type: ignore[attr-defined]
            if inspect is not None and response.status_code < 500:
                inspect(response)
    except Exception as error:
        tb = traceback.extract_tb(error.__traceback__)
        where = next(
            (
                f"{f.filename.removeprefix('/work/main/')}:{f.lineno}"
                for f in reversed(tb)
                if "/work/main/" in f.filename
                and "/.venv/" not in f.filename
                and "tests/" not in f.filename
            ),
            "?",
        )
        walk.findings.append(
            Finding(
                url[:200], method, shown, f"{type(error).__name__}: {str(error)[:150]} at {where}"
            )
        )
        return None
    if response.status_code >= 500:
        walk.findings.append(Finding(url[:200], method, shown, f"status {response.status_code}"))
    return response


def _fill(route: Route, seeded: Seeded) -> str:
    missing = [name for name, _ in route.kwargs if name not in seeded.values]
    if missing:
        pytest.fail(f"/{route.template}: no value for {missing}; teach _path_values to make one")
    return route.url(seeded.values)


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='%')}={v}" for k, v in pairs)


def _get_walk(route: Route, seeded: Seeded, walk: Walk) -> None:
    client = _client_for(route, seeded)
    base = _fill(route, seeded)
    with reads() as keys:  # with a parameter too: `request.GET or None` reads none without
        _send(walk, client, "GET", base)
        _send(walk, client, "GET", f"{base}?zz_probe=1")
    keys.discard("zz_probe")
    # `tenant` (the portal's tenant switcher, read by every page) alone: a wrong one is a 404
    # before anything else is read.
    params = sorted(k for k in keys - {"tenant"} if not hasattr(QueryDict, k))
    for value in SHARP_VALUES if "tenant" in keys else ():
        _send(walk, client, "GET", f"{base}?tenant={value}")
    if "tenant" in keys and client is seeded.owner:  # a tenant the owner is not in
        response = _send(walk, client, "GET", f"{base}?tenant={seeded.other.slug}")
        if response is not None and response.status_code != 404:
            walk.findings.append(
                Finding(base, "GET", "", f"another tenant: {response.status_code}")
            )
    for value in QUERY_VALUES if params else ():  # every parameter at once
        _send(walk, client, "GET", f"{base}?{_query([(p, value) for p in params])}")
    for param in params:  # each alone, the others at their defaults
        for value in SHARP_VALUES:
            _send(walk, client, "GET", f"{base}?{param}={value}")
    repeated = [(p, v) for p in [*params, "zz_unknown"] for v in ("1", "2", "%00")]
    _send(walk, client, "GET", f"{base}?{_query(repeated)}")
    for value in ("", "%00", "9999-12-31"):  # as htmx asks for a page's part
        query = _query([(p, value) for p in params])
        _send(walk, client, "GET", f"{base}?{query}", headers=HTMX)
    _path_walk(route, seeded, walk, client, "GET")


def _path_walk(route: Route, seeded: Seeded, walk: Walk, client: Client, method: str) -> None:
    for name, converter in route.kwargs:
        tried = list(PATH_VALUES.get(converter, PATH_VALUES["str"]))
        if name in seeded.others:
            tried.append(seeded.others[name])
        for value in tried:
            url = route.url({**seeded.values, name: value})
            response = _send(walk, client, method, url)
            if (
                response is not None
                and value == seeded.others.get(name)
                and response.status_code not in (301, 308, 403, 404)  # moved: sent on
            ):
                walk.findings.append(
                    Finding(url, method, "", f"another tenant's {name}: {response.status_code}")
                )


# Valid bodies, so that a bad value in one field reaches the checks behind the others. A route
# not listed is posted the fields it reads from an empty body.
def _bodies(seeded: Seeded) -> dict[str, dict[str, str]]:
    values = seeded.values
    version = RateCardVersion.objects.get(pk=values["version_id"])
    contract = {
        "name": "Fuzz",
        "price_per_1000_minor": "1000",
        "currency": "USD",
        "committed_credits": "1000",
        "grant_schedule": "upfront",
        "start_at": "2026-02-01 00:00",
        "end_at": "2027-02-01 00:00",
        "rate_card": str(version.rate_card_id),
        "rate_card_mode": "follow",
        "notice_days": "30",
        "net_terms_days": "30",
        "credits_on": "signature",
        "overdraft_limit": "0",
        "reason": "fuzz",
    }
    return {
        "portal:buy": {"pack": "isolation-pack"},
        "portal:auto-top-up": {
            "enabled": "on",
            "threshold": "100",
            "pack": "isolation-pack",
            "monthly_cap": "50",
        },
        "portal:plan-subscribe": {"plan": "isolation-plan", "seats": "1"},
        "portal:plan-change": {"plan": "isolation-plan", "seats": "2"},
        "portal:usage-export-create": {
            "kind": "events",
            "since": "2026-01-01",
            "until": "2026-01-10",
        },
        "portal:keys": {"name": "k", "scopes": "read"},
        "portal:webhooks": {
            "url": "https://hooks.example.com/in",
            "event_types": "topup.succeeded",
        },
        "portal:team": {"email": "someone@acme.test", "role": "member"},
        "portal:team-role": {"role": "billing"},
        "portal:alerts": {"thresholds": "20, 10", "soft_cap": "10"},
        "billing:fake-card-setup": {"card": "4242"},
        "insights:customer": {
            "action": "grant",
            "grant-credits": "10",
            "grant-policy": "permanent",
            "grant-reason": "fuzz",
            "grant-token": "fuzz-token",
        },
        "insights:customer#adjust": {
            "action": "adjust",
            "adjust-credits": "-1",
            "adjust-reason": "fuzz",
            "adjust-token": "fuzz-token-2",
        },
        "insights:customer#refund": {
            "action": "refund",
            "refund-event": _charged_event_key(seeded.tenant),
            "refund-credits": "0.5",
            "refund-reason": "fuzz",
            "refund-token": "fuzz-token-3",
        },
        "insights:contract-new": {"tenant": values["tenant_id"], **contract},
        "insights:contract": contract,
        "insights:exchange-rates": {
            "from_currency": "USD",
            "to_currency": "EUR",
            "rate": "0.9",
            "effective_on": "2026-01-01",
            "source": "ECB",
        },
        "insights:publish": {"notice_days": "30", "reason": "fuzz"},
        "insights:simulate": {"version": values["version_id"], "days": "30"},
        "insights:weights_draft": {"reason": "fuzz"},
        "login": {"username": "fuzz-owner", "password": "wrong"},
    }


def _charged_event_key(tenant: Tenant) -> str:
    """The key of one of the tenant's usage events that charged credits (a refund's target)."""
    event = UsageEvent.objects.filter(tenant=tenant, ledger_transaction__isnull=False).first()
    assert event is not None  # the seed's events are charged
    return event.idempotency_key


# Forms that move money or change terms: a bad value must leave everything as it was.
MONEY = {
    "portal:buy",
    "portal:topup-cancel",
    "portal:auto-top-up",
    "portal:plan-subscribe",
    "portal:plan-change",
    "portal:plan-cancel",
    "portal:payment-method-remove",
    "billing:fake-checkout",
    "billing:fake-card-setup",
    "billing:contract-invoice",
    "insights:customer",
    "insights:contract-new",
    "insights:contract",
    "insights:exchange-rates",
    "insights:publish",
}


# Fields where most bad values are good ones: free text (a reason may well be "-1"), a
# checkbox (any value ticks it).
TEXT = {
    "name",
    "reason",
    "grant-reason",
    "adjust-reason",
    "refund-reason",
    "source",
    "grant-token",
    "adjust-token",
    "refund-token",
    "from_currency",  # "NaN" and "abc" are three letters, as a currency code is
    "to_currency",
}
LENIENT = {"enabled", "activate"}


def money_state(tenant: Tenant) -> tuple[Any, ...]:
    """What a refused form must leave as it was."""
    return (
        available_get(tenant=tenant),
        LedgerEntry.objects.count(),
        sorted(TopUp.objects.values_list("pk", "status")),
        sorted(Subscription.objects.values_list("pk", "plan_id", "seats", "status")),
        sorted(Contract.objects.values_list("pk", "status", "price_per_1000_minor")),
        sorted(
            AutoTopUpPolicy.objects.values_list("pk", "enabled", "threshold", "monthly_cap_minor")
        ),
        sorted(BillingCustomer.objects.values_list("pk", "payment_method_id")),
        ExchangeRate.objects.count(),
        sorted(RateCardVersion.objects.values_list("pk", "status")),
    )


def _encode(body: dict[str, str]) -> str:
    """A form body; values are sent as written (they may hold percent escapes already)."""
    return "&".join(
        f"{quote(k, safe='')}={v if '%' in v else quote(v, safe='')}" for k, v in body.items()
    )


def _post_walk(route: Route, seeded: Seeded, walk: Walk) -> None:
    client = _client_for(route, seeded)
    url = _fill(route, seeded)
    bodies = _bodies(seeded)
    with reads() as keys:
        _send(walk, client, "POST", url, "")
        _send(walk, client, "POST", url, "zz_probe=1")
    keys.discard("zz_probe")
    variants = [k for k in bodies if k.split("#")[0] == route.name] or [route.name]
    money = route.name in MONEY
    before = money_state(seeded.tenant) if money else ()
    for variant in variants:
        base = bodies.get(variant) or dict.fromkeys(sorted(keys - {"tenant"}), "1")
        if variant in bodies:  # a valid body is taken, or its bad values prove little
            response = _send(walk, client, "POST", url, _encode(base))
            if response is not None and response.status_code in (400, 403, 422):
                walk.findings.append(
                    Finding(url, "POST", _encode(base), f"the valid body of {variant} refused")
                )
        _send(walk, client, "POST", url, "%FF%ED%A0%80=%00&" + _encode(base))
        for i, name in enumerate(base):
            _send(walk, client, "POST", url, _encode({k: v for k, v in base.items() if k != name}))
            if name == "action":
                continue  # the branch: its bad values are the missing-field case's
            for value in _bad_values(i):
                if value == base[name]:
                    continue  # -1 is a fine adjustment
                body = _encode({**base, name: value})
                bad = name not in LENIENT and (name not in TEXT or value in ("%00", LONG))
                check = _unchanged(walk, url, body, seeded, before) if money and bad else None
                _send(walk, client, "POST", url, body, inspect=check)
    _path_walk(route, seeded, walk, client, "POST")


def _bad_values(i: int) -> list[str]:
    """The bad values for a body's i-th field: the NUL, the overflow and the long string for
    every field, and two of the others in turn (a body's fields share them out)."""
    always = ["%00", "99999999999999999999999999", LONG]
    rest = [v for v in BAD_VALUES if v not in always]
    return always + [rest[(2 * i + k) % len(rest)] for k in range(2)]


def _unchanged(
    walk: Walk, url: str, body: str, seeded: Seeded, before: tuple[Any, ...]
) -> Callable[[Any], None]:
    """A check that a bad value was refused: not a 200, and nothing moved."""

    def check(response: Any) -> None:
        if money_state(seeded.tenant) != before:
            walk.findings.append(Finding(url, "POST", body, "a bad value changed money state"))
        elif response.status_code == 200:
            walk.findings.append(Finding(url, "POST", body, "200 for a bad value"))

    return check


# Findings not fixed yet, each with why: (method, path, a piece of the body). Once one is
# fixed, the walk says so and its entry must go.
KNOWN: dict[tuple[str, str, str], str] = {}


def _report(walk: Walk, *, console: bool) -> str:
    """One line per problem (where it was raised), with the first request that found it; and
    the KNOWN entries no request found any more."""
    first: dict[str, Finding] = {}
    seen: set[tuple[str, str, str]] = set()
    for f in walk.findings:
        known = [k for k in KNOWN if (f.method, f.url) == k[:2] and k[2] in f.body]
        seen.update(known)
        if not known:
            first.setdefault(f.problem, f)
    lines = [
        f"{problem}\n    {f.method} {f.url[:160]} [{f.body[:100]}]"
        for problem, f in sorted(first.items())
    ]
    lines += [
        f"fixed now, remove it from KNOWN: {k}"
        for k in KNOWN
        if k not in seen and k[1].startswith(f"/{CONSOLE}") == console
    ]
    return "\n".join(lines)


def test_the_walk_sees_every_area() -> None:
    templates = [r.template for r in ROUTES]
    assert "statement/" in templates
    assert "console/margin/" in templates
    assert "pricing/estimate/" in templates
    assert "team/join/<str:token>/" in templates
    assert not [t for t in templates if t.startswith(("api/", "admin/"))]


def _walk_area(seeded: Seeded, prefixes: tuple[str, ...], exclude: tuple[str, ...] = ()) -> Walk:
    names = {route.name for route in ROUTES}
    named = {key.split("#")[0] for key in _bodies(seeded)} | MONEY
    assert sorted(named - names) == [], "a body or MONEY names no route (renamed?)"
    walk = Walk()
    for route in ROUTES:
        if not route.template.startswith(prefixes) or route.template.startswith(exclude):
            continue
        if "GET" in route.methods:
            _get_walk(route, seeded, walk)
        if "POST" in route.methods:
            _post_walk(route, seeded, walk)
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
            _send(walk, _client_for(route, seeded), method, _fill(route, seeded), "a=%00")
    return walk


@time_machine.travel("2026-01-20 12:00:00+00:00", tick=False)
def test_no_console_page_answers_500(seeded: Seeded) -> None:
    walk = _walk_area(seeded, (CONSOLE,))

    assert walk.requests > 500
    report = _report(walk, console=True)
    if report:
        pytest.fail(f"{len(walk.findings)} findings:\n{report}")


@time_machine.travel("2026-01-20 12:00:00+00:00", tick=False)
def test_no_portal_or_public_page_answers_500(seeded: Seeded) -> None:
    walk = _walk_area(seeded, ("",), exclude=(CONSOLE,))

    assert walk.requests > 500
    report = _report(walk, console=False)
    if report:
        pytest.fail(f"{len(walk.findings)} findings:\n{report}")


# The estimator's rows are the one form whose shape varies (parallel lists of any length): drawn.
_cell = st.one_of(
    st.sampled_from(["chat", "web_research", "", "turbo", "1,000", "1_000 000", "²", "-1"]),
    st.text(max_size=30),
)


@pytest.mark.django_db
@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rows=st.lists(st.tuples(_cell, _cell, _cell), max_size=6),
    extra=st.integers(min_value=0, max_value=2),
)
def test_the_public_estimator_takes_any_rows(rows: list[tuple[str, str, str]], extra: int) -> None:
    ratecard_seed_example()
    pairs = [
        (n, v) for row in rows for n, v in zip(("action", "model_class", "count"), row, strict=True)
    ]
    pairs += [("count", "1")] * extra  # lists of unequal length
    query = "&".join(f"{n}={quote(v.encode('utf-8', 'surrogatepass'))}" for n, v in pairs)
    walk = Walk()

    response = _send(walk, Client(), "GET", f"/pricing/estimate/?{query}")

    assert _report(walk, console=False) == ""
    assert response.status_code in (200, 422)
