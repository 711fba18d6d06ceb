"""The import rules between apps (docs/architecture.md, "Apps and layers"), read from every
import statement in every app's source, those inside functions included."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("tenants", "ledger", "ratecards", "metering", "billing", "portal", "insights")
# What each app may import. The top layer (portal, insights) may read every app below it,
# and nothing imports it.
ALLOWED = {
    "tenants": set(),
    "ledger": {"tenants"},
    "ratecards": {"tenants"},
    "metering": {"tenants", "ledger", "ratecards"},
    "billing": {"tenants", "ledger", "ratecards"},
    "portal": {"tenants", "ledger", "ratecards", "metering", "billing"},
    "insights": {"tenants", "ledger", "ratecards", "metering", "billing"},
}


def _imported_apps(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name.split(".")[0] for name in names} & set(APPS)


def _violations() -> list[str]:
    found: list[str] = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")) if (ROOT / app).is_dir() else []:
            wrong = _imported_apps(path) - ALLOWED[app] - {app}
            found.extend(f"{path.relative_to(ROOT)} imports {name}" for name in sorted(wrong))
    return found


def test_every_app_imports_only_the_layers_below_it() -> None:
    assert _violations() == []


def test_the_rule_catches_an_import_inside_a_function(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from metering.models import UsageEvent\n    import billing\n")
    assert _imported_apps(source) == {"metering", "billing"}
