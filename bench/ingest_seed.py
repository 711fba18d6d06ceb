"""Seed the bench database (run with DJANGO_SETTINGS_MODULE=bench.ingest_settings): a tenant
with a billion credits (bought, so revenue is non-zero), the example rate card and cost
catalog, the ceiling's balance row. Prints the API key."""

import django

django.setup()

from django.db import connection  # noqa: E402

from ledger.models import CreditBucket  # noqa: E402
from ledger.services import ledger_grant  # noqa: E402
from ratecards.services import ratecard_seed_example  # noqa: E402
from tenants.services import api_key_create, tenant_create  # noqa: E402

ratecard_seed_example()
tenant = tenant_create(name="Bench", slug="bench")
ledger_grant(
    tenant=tenant,
    credits=1_000_000_000,
    policy=CreditBucket.Policy.PERMANENT,
    source=CreditBucket.Source.TOPUP,
    external_reference="bench-pack",
    price_minor=1_000_000_000,
)
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE bench_balance (id int PRIMARY KEY, balance numeric(18, 4))")
    cursor.execute("INSERT INTO bench_balance VALUES (1, 1000000000)")
print(api_key_create(tenant=tenant, name="bench").plaintext)
