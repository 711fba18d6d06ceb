"""The embedded default end to end: no DATABASE_URL, no broker URL, a fresh var/ directory."""

import re
import sqlite3
from pathlib import Path

from tests.subprocess_env import run_python

KEY = re.compile(r"API key   (cl_[0-9a-f]{8}_[A-Za-z0-9_-]{43})")


def test_migrate_and_seed_demo_on_sqlite(tmp_path: Path) -> None:
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.local", "CREDITLINE_VAR_DIR": str(tmp_path)}

    migrate = run_python(["manage.py", "migrate", "--noinput", "-v", "0"], env, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    first = run_python(["manage.py", "seed_demo"], env)
    second = run_python(["manage.py", "seed_demo"], env)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    first_key, second_key = (KEY.search(out.stdout) for out in (first, second))
    assert first_key is not None, first.stdout
    assert second_key is not None, second.stdout
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        tenants = db.execute("SELECT slug FROM tenants_tenant").fetchall()
        live = db.execute(
            "SELECT prefix FROM tenants_apikey WHERE name = 'seed_demo' AND revoked_at IS NULL"
        ).fetchall()
    assert tenants == [("demo",)]
    assert live == [(second_key.group(1).split("_")[1],)]
