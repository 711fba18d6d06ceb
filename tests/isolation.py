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
"""

import importlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern

from tenants.models import Tenant

Seeder = Callable[[Tenant], dict[str, str]]

MARKER = "zz-tenant-a-only-7c1f"
API_PREFIX = "api/v1/"

_seeders: dict[str, Seeder] = {}


def register(seeder: Seeder) -> Seeder:
    _seeders[f"{seeder.__module__}.{seeder.__qualname__}"] = seeder
    return seeder


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


# The walk over the URL resolver: every route under /api/v1/, with its kwargs and methods.

_ROUTE_KWARG = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")
_REGEX_KWARG = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")
_DUMMY_BY_CONVERTER = {"int": "1", "uuid": "00000000-0000-0000-0000-000000000000"}


@dataclass(frozen=True)
class Route:
    template: str  # e.g. "api/v1/workflows/<int:workflow_id>"
    kwargs: tuple[str, ...]
    converters: tuple[str, ...]
    methods: tuple[str, ...]

    def url(self, values: dict[str, str]) -> str:
        def fill(match: re.Match[str]) -> str:
            return values[match.group("name")]

        return "/" + _REGEX_KWARG.sub(fill, _ROUTE_KWARG.sub(fill, self.template))

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


def api_routes() -> list[Route]:
    routes = []
    for template, pattern in _walk(get_resolver("config.urls").url_patterns):
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
                kwargs=tuple(name for name, _ in found),
                converters=tuple(conv for _, conv in found),
                methods=_methods(pattern.callback),
            )
        )
    return sorted(routes, key=lambda route: route.template)
