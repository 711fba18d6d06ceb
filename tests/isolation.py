"""The registry behind tests/test_isolation.py, which walks every /api/v1/ route.

Each app whose routes take URL kwargs (or whose lists could show another tenant's rows) adds a
`tests/<app>/isolation.py` that registers a seeder:

    from tests.isolation import MARKER, register

    @register
    def seed_workflows(tenant: Tenant) -> dict[str, str]:
        run = workflow_start(tenant=tenant, name=f"{MARKER} run", ...)
        return {"workflow_id": str(run.pk), "workflow_external_id": run.external_id}

A seeder creates that app's objects for tenant A and returns strings: keys that are URL kwargs
fill the routes' `<kwarg>`s; every value is also a piece of tenant A's data that must never
appear in tenant B's responses. Put MARKER into names and descriptions, so a leaked row is
caught even when no id is printed.

Every write route (POST / PUT / PATCH) whose path takes a kwarg also needs a VALID request body,
registered next to the seeder and keyed by the route's URL name (or its path after /api/v1/):

    @register_bodies
    def workflow_bodies(values: Mapping[str, str]) -> dict[str, Any]:
        return {"workflow-steps": {"idempotency_key": "k", "action": "chat", "quantity": 1}}

The walk sends that body with tenant B's key and tenant A's ids and requires 403 or 404: an
empty body would let a view that validates before it scopes answer 422 and pass while it leaks
on a valid body. The walk also posts the body as tenant A, which must succeed, so a body that
is not actually valid is caught. `values` are the merged seeder values, for bodies that must
name one of tenant A's objects. Bodies must not contain MARKER (a view may echo its input).
"""

import importlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern

from tenants.models import Tenant

Seeder = Callable[[Tenant], dict[str, str]]
BodyProvider = Callable[[Mapping[str, str]], dict[str, Any]]

MARKER = "zz-tenant-a-only-7c1f"
API_PREFIX = "api/v1/"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})

_seeders: dict[str, Seeder] = {}
_body_providers: dict[str, BodyProvider] = {}


def register(seeder: Seeder) -> Seeder:
    _seeders[f"{seeder.__module__}.{seeder.__qualname__}"] = seeder
    return seeder


def register_bodies(provider: BodyProvider) -> BodyProvider:
    _body_providers[f"{provider.__module__}.{provider.__qualname__}"] = provider
    return provider


def load_seeders() -> dict[str, Seeder]:
    """Import every tests/<app>/isolation.py found on disk (so new apps join by existing)."""
    tests_dir = Path(__file__).resolve().parent
    for module in sorted(tests_dir.glob("*/isolation.py")):
        importlib.import_module(f"tests.{module.parent.name}.isolation")
    return dict(_seeders)


def seed(tenant: Tenant) -> dict[str, str]:
    """Run every seeder for `tenant`; two seeders filling the same kwarg differently is an error."""
    values: dict[str, str] = {}
    for name, seeder in load_seeders().items():
        for key, value in seeder(tenant).items():
            if key in values and values[key] != value:
                raise ValueError(f"{name} sets {key}={value!r}, already set to {values[key]!r}.")
            values[key] = str(value)
    return values


def bodies(values: Mapping[str, str], routes: list["Route"]) -> dict[str, Any]:
    """Every registered body, keyed by the route template it belongs to. A key that names no
    route (a renamed URL), or two providers giving one route a body, is an error."""
    load_seeders()
    by_key = {route.name: route for route in routes if route.name}
    by_key |= {route.template.removeprefix(API_PREFIX): route for route in routes}
    found: dict[str, Any] = {}
    for name, provider in _body_providers.items():
        for key, body in provider(values).items():
            route = by_key.get(key)
            if route is None:
                raise ValueError(
                    f"{name} gives a body for {key!r}, which is no /{API_PREFIX} route."
                )
            if route.template in found:
                raise ValueError(f"{name} gives /{route.template} a second body.")
            if MARKER in json.dumps(body):
                raise ValueError(f"{name}: the body for {key!r} must not contain MARKER.")
            found[route.template] = body
    return found


# The walk over the URL resolver: every route under /api/v1/, with its kwargs and methods.

_ROUTE_KWARG = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")
_REGEX_KWARG = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")
_DUMMY_BY_CONVERTER = {"int": "1", "uuid": "00000000-0000-0000-0000-000000000000"}


@dataclass(frozen=True)
class Route:
    template: str  # e.g. "api/v1/workflows/<int:workflow_id>"
    name: str | None  # the URL name, e.g. "workflow-detail"
    kwargs: tuple[str, ...]
    converters: tuple[str, ...]
    methods: tuple[str, ...]

    def url(self, values: dict[str, str]) -> str:
        def fill(match: re.Match[str]) -> str:
            return values[match.group("name")]

        return "/" + _REGEX_KWARG.sub(fill, _ROUTE_KWARG.sub(fill, self.template))

    @property
    def write_methods(self) -> tuple[str, ...]:
        return tuple(method for method in self.methods if method in WRITE_METHODS)

    @property
    def openapi_path(self) -> str:
        """The path as OpenAPI writes it: `/api/v1/workflows/{workflow_id}`."""
        return self.url({name: "{" + name + "}" for name in self.kwargs})

    def dummy_url(self) -> str:
        return self.url(
            {
                name: _DUMMY_BY_CONVERTER.get(conv, "x")
                for name, conv in zip(self.kwargs, self.converters, strict=True)
            }
        )


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        segment = str(entry.pattern)
        if isinstance(entry.pattern, RegexPattern):
            segment = segment.removeprefix("^").removesuffix("$")
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + segment)
        else:
            yield prefix + segment, entry


def _methods(callback: Any) -> tuple[str, ...]:
    actions = getattr(callback, "actions", None)  # a DRF viewset's {method: action}
    if actions:
        return tuple(sorted(method.upper() for method in actions))
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:  # a plain function view: try every method
        return ("DELETE", "GET", "PATCH", "POST", "PUT")
    return tuple(
        sorted(
            method.upper()
            for method in view_class.http_method_names
            if method not in ("options", "head") and hasattr(view_class, method)
        )
    )


def api_routes(urlconf: str = "config.urls") -> list[Route]:
    routes = []
    for template, pattern in _walk(get_resolver(urlconf).url_patterns):
        if not template.startswith(API_PREFIX):
            continue
        found = [
            (m.group("name"), m.group("converter") or "str")
            for m in _ROUTE_KWARG.finditer(template)
        ]
        found += [(m.group("name"), "regex") for m in _REGEX_KWARG.finditer(template)]
        routes.append(
            Route(
                template=template,
                name=pattern.name,
                kwargs=tuple(name for name, _ in found),
                converters=tuple(conv for _, conv in found),
                methods=_methods(pattern.callback),
            )
        )
    return sorted(routes, key=lambda route: route.template)
