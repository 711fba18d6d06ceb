"""Nothing but the ledger/services/ package, the ledger's own SQL functions (ledger/sql/,
installed by ledger/migrations/) and the account lock in ledger/locks.py writes ledger rows
(ledger/rollup.py writes the ledger's daily debit totals, derived from them).

A static check over the whole source tree, every app and every test directory but this one.
It was chosen over a runtime guard because it sees every code path, not only those some test
happens to run, and it fails in the ledger's own suite however the other apps are tested.
It flags, in any other file:
- a write through a ledger model's manager: `CreditBucket.objects.create(...)`,
  `LedgerEntry.objects.filter(...).update(...)`, `bulk_create`, `get_or_create`, ...;
- building a ledger model instance (`CreditHold(...)`): outside the services, the only use of
  one is to `.save()` it (a line may say `# never saved`: the selectors' unsaved default);
- raw SQL that inserts, updates or deletes a ledger table, in code and in every other app's
  migrations (a RunSQL is a string like any other);
- a .sql file outside ledger/sql/ that does.
bench/ is exempt on purpose: it seeds throwaway benchmark databases with set-based SQL (100,000
buckets through the services would take minutes) and checks them with ledger_verify.
What it cannot see (a `.save()` on a bucket fetched through a selector) is covered for entries
and transactions by the ORM guard and the trigger; buckets, holds and accounts are only ever
returned to other apps as read results.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEDGER_MODELS = {"CreditAccount", "CreditBucket", "CreditHold", "LedgerEntry", "LedgerTransaction"}
# ledger/rollup.py writes only the ledger's own rollup (DebitDay), derived from the entries by
# its job; no money row.
WRITERS = {"ledger/locks.py", "ledger/rollup.py"}
WRITER_DIRS = ("ledger/services/", "ledger/migrations/", "ledger/sql/", "tests/ledger/", "bench/")
SKIP_DIRS = {".venv", "var", "node_modules", ".git", "__pycache__"}
WRITE_METHODS = {
    "create",
    "bulk_create",
    "bulk_update",
    "get_or_create",
    "update_or_create",
    "update",
    "delete",
    "save",
    "_insert",
    "_update",
    "raw",
}
RAW_SQL = re.compile(r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?ledger_", re.IGNORECASE)


def _root_name(node: ast.expr) -> str | None:
    """`CreditBucket` for `CreditBucket.objects.filter(x=1).update`."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def _goes_through_manager(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute | ast.Call):
        if isinstance(node, ast.Attribute) and node.attr in {
            "objects",
            "_default_manager",
            "_base_manager",
        }:
            return True
        node = node.value if isinstance(node, ast.Attribute) else node.func
    return False


def violations_in(source: str, relative: str) -> list[str]:
    found = []
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Name)
                and func.id in LEDGER_MODELS
                and not lines[node.lineno - 1].endswith("# never saved")
            ):
                found.append(f"{relative}:{node.lineno}: builds a {func.id}")
            elif (
                isinstance(func, ast.Attribute)
                and func.attr in WRITE_METHODS
                and _root_name(func) in LEDGER_MODELS
                and _goes_through_manager(func.value)
            ):
                found.append(f"{relative}:{node.lineno}: {_root_name(func)} ... .{func.attr}()")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and RAW_SQL.search(node.value)
        ):
            found.append(f"{relative}:{node.lineno}: raw SQL writes a ledger table")
    return found


def project_files(suffix: str = ".py") -> list[tuple[Path, str]]:
    files = []
    for path in ROOT.rglob(f"*{suffix}"):
        relative = path.relative_to(ROOT).as_posix()
        parts = set(path.relative_to(ROOT).parts)
        if parts & SKIP_DIRS or relative in WRITERS or relative.startswith(WRITER_DIRS):
            continue
        files.append((path, relative))
    return files


def test_no_code_outside_the_ledger_services_writes_ledger_rows() -> None:
    files = project_files()
    # The walk sees the tree, other apps' migrations included.
    assert {"ledger/selectors.py", "billing/migrations/0001_initial.py"} <= {r for _, r in files}
    assert not any(rel.startswith("ledger/services") for _, rel in files)
    found = [v for path, rel in files for v in violations_in(path.read_text(), rel)]
    assert found == []


def test_no_sql_file_outside_the_ledger_writes_ledger_rows() -> None:
    assert (ROOT / "ledger/sql/debit_v1.sql").exists()
    found = [rel for path, rel in project_files(".sql") if RAW_SQL.search(path.read_text())]
    assert found == []


def test_the_check_catches_each_kind_of_write() -> None:
    source = """
from ledger.models import CreditBucket, LedgerEntry
CreditBucket.objects.create(tenant_id=1)
CreditBucket.objects.filter(pk=1).update(remaining=0)
LedgerEntry._default_manager.bulk_create([])
hold = CreditHold(tenant_id=1)
cursor.execute("UPDATE ledger_creditbucket SET remaining = 0")
CreditBucket.objects.filter(tenant_id=1).aggregate()
"""
    assert violations_in(source, "billing/services.py") == [
        "billing/services.py:3: CreditBucket ... .create()",
        "billing/services.py:4: CreditBucket ... .update()",
        "billing/services.py:5: LedgerEntry ... .bulk_create()",
        "billing/services.py:6: builds a CreditHold",
        "billing/services.py:7: raw SQL writes a ledger table",
    ]
