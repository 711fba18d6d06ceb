"""tenants.db.bulk_insert: one UNNEST statement, values as they are, pks set."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.db import bulk_insert
from tenants.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db


def test_inserts_in_one_statement_and_sets_primary_keys(tenant: Tenant) -> None:
    keys = [
        ApiKey(
            tenant=tenant,
            name=f"k{n}",
            prefix=f"0000000{n}",
            key_hash="h" * 64,
            scopes=["read", "write"][: n + 1],
        )
        for n in range(3)
    ]
    with (
        time_machine.travel(datetime(2026, 3, 1, 9, 30, tzinfo=UTC), tick=False),
        CaptureQueriesContext(connection) as queries,
    ):
        bulk_insert(keys)

    assert len(queries) == 1
    assert "UNNEST" in queries[0]["sql"]
    assert all(k.pk is not None and not k._state.adding for k in keys)
    stored = list(ApiKey.objects.filter(pk__in=[k.pk for k in keys]).order_by("pk"))
    assert [(k.name, k.prefix, k.scopes, k.created_at, k.last_used_at) for k in stored] == [
        ("k0", "00000000", ["read"], datetime(2026, 3, 1, 9, 30, tzinfo=UTC), None),
        ("k1", "00000001", ["read", "write"], datetime(2026, 3, 1, 9, 30, tzinfo=UTC), None),
        ("k2", "00000002", ["read", "write"], datetime(2026, 3, 1, 9, 30, tzinfo=UTC), None),
    ]


def test_nothing_to_insert_runs_no_query(db: None) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert bulk_insert([]) == []
    assert len(queries) == 0
