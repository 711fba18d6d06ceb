"""Consumption order on SQLite, the embedded default (`bin/run` with no DATABASE_URL).

SQLite sorts NULL first where PostgreSQL sorts it last, so an order on `expires_at` alone would
spend permanent credits before expiring ones there (DESIGN.md, invariant 5). The suite's own
database is PostgreSQL, so this runs the ledger in a child process on a fresh SQLite file.
"""

import json
from pathlib import Path

from tests.subprocess_env import run_python

# Every key after `expires_at` favours the permanent bucket (free, granted first), so only the
# expiry key, NULL last, can make the debit draw from the monthly_reset bucket.
SCRIPT = """
import json
from datetime import timedelta
from decimal import Decimal

import django

django.setup()

from django.core.management import call_command
from django.utils import timezone

from ledger.selectors import balance_get, bucket_list
from ledger.services import ledger_debit, ledger_grant
from tenants.services import tenant_create

call_command("migrate", "--noinput", verbosity=0)
now = timezone.now()
tenant = tenant_create(name="Order", slug="order")
permanent = ledger_grant(
    tenant=tenant, credits=Decimal("100"), policy="permanent", source="promotion",
    external_reference="promo", granted_at=now - timedelta(days=10),
).bucket
monthly = ledger_grant(
    tenant=tenant, credits=Decimal("50"), policy="monthly_reset", source="subscription",
    external_reference="plan", granted_at=now - timedelta(days=1),
    expires_at=now + timedelta(days=20), price_minor=5000,
).bucket
result = ledger_debit(tenant=tenant, amount=Decimal("30"), idempotency_key="run-1")
names = {permanent.pk: "permanent", monthly.pk: "monthly_reset"}
print(json.dumps({
    "vendor": django.db.connection.vendor,
    "drawn": [[names[p.bucket_id], str(p.amount)] for p in result.parts],
    "bucket_list": [b.policy for b in bucket_list(tenant=tenant, include_spent=True)],
    "balance_get": [b.policy for b in balance_get(tenant=tenant).buckets],
}))
"""


def test_a_debit_on_sqlite_spends_expiring_credits_before_permanent_ones(tmp_path: Path) -> None:
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.local", "CREDITLINE_VAR_DIR": str(tmp_path)}

    run = run_python(["-c", SCRIPT], env, timeout=120)

    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {
        "vendor": "sqlite",
        "drawn": [["monthly_reset", "30"]],
        "bucket_list": ["monthly_reset", "permanent"],
        "balance_get": ["monthly_reset", "permanent"],
    }
