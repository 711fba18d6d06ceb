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
from collections.abc import Callable
from pathlib import Path

from tenants.models import Tenant

Seeder = Callable[[Tenant], dict[str, str]]

MARKER = "zz-tenant-a-only-7c1f"

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
