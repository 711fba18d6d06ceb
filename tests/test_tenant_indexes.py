"""DESIGN's shared schema, read from the migrated database: every table of a tenant-owned model
has a `tenant_id` column, and every index on it starts with that column (the layout a
distributed PostgreSQL shards by tenant), so that no lookup of one tenant's rows reads another's
and no index is written per row for nothing."""

import pytest
from django.apps import apps
from django.db import connection

from tenants.models import TenantOwnedModel

pytestmark = pytest.mark.django_db

# Indexes not led by tenant_id, by table(columns), each with why. A new one fails the test
# until it is led by tenant_id or named here with its reason.
_GLOBAL_PARENT = "a key to a vendor-wide row: its delete check reads this index"
_BY_TIME = "a job's scan across every tenant by due time or day"
_DEBT = "a key to a tenant-owned row: should be (tenant_id, key); Django's default index"
ALLOWED: dict[str, str] = {
    "billing_autotopuppolicy(pack_id)": _GLOBAL_PARENT,
    "billing_contract(pinned_version_id)": _GLOBAL_PARENT,
    "billing_contract(rate_card_id)": _GLOBAL_PARENT,
    "billing_subscription(next_plan_id)": _GLOBAL_PARENT,
    "billing_subscription(plan_id)": _GLOBAL_PARENT,
    "billing_subscriptioninvoice(plan_id)": _GLOBAL_PARENT,
    "billing_topup(pack_id)": _GLOBAL_PARENT,
    "ratecards_ratecardassignment(pinned_version_id)": _GLOBAL_PARENT,
    "ratecards_ratecardassignment(rate_card_id)": _GLOBAL_PARENT,
    "tenants_invitation(closed_by_id)": _GLOBAL_PARENT,
    "tenants_invitation(invited_by_id)": _GLOBAL_PARENT,
    "tenants_membership(user_id)": "a user's tenants, read at sign-in before a tenant is known",
    "tenants_apikey(prefix)": "an API key is found by its prefix before its tenant is known",
    "ledger_creditbucket(expires_at)": _BY_TIME,
    "billing_webhookdelivery(next_attempt_at)": _BY_TIME,
    "insights_marginday(day)": _BY_TIME,
    "insights_tenantmarginday(day)": _BY_TIME,
    "insights_tenantmarginmonth(month)": _BY_TIME,
    "insights_valueday(movement,day)": _BY_TIME,
    "billing_contractinvoice(contract_id)": _DEBT,
    "billing_subscriptioninvoice(subscription_id)": _DEBT,
    "billing_webhookattempt(delivery_id)": _DEBT,
    "billing_webhookdelivery(endpoint_id)": _DEBT,
    "metering_workflowrun(hold_id)": _DEBT,
}


def _tenant_tables() -> list[str]:
    return sorted(
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, TenantOwnedModel) and not model._meta.proxy
    )


def _indexes(table: str) -> list[tuple[str, list[str]]]:
    """(index name, its columns in order) of every index on the table but its primary key."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname,
                   array_agg(a.attname ORDER BY k.ord)
              FROM pg_index x
              JOIN pg_class i ON i.oid = x.indexrelid
              JOIN pg_class t ON t.oid = x.indrelid
              CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
              LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
             WHERE t.relname = %s AND NOT x.indisprimary
             GROUP BY i.relname
            """,
            [table],
        )
        return [(name, list(columns)) for name, columns in cursor.fetchall()]


def test_every_tenant_owned_table_is_keyed_and_indexed_by_tenant() -> None:
    tables = _tenant_tables()
    not_led = sorted(
        {
            f"{table}({','.join(str(c) for c in columns)})"
            for table in tables
            for _, columns in _indexes(table)
            if columns[0] != "tenant_id"
        }
    )

    assert "ledger_ledgerentry" in tables  # the walk sees the models
    assert [index for index in not_led if index not in ALLOWED] == []
    assert sorted(set(ALLOWED) - set(not_led)) == []  # an entry no longer needed goes
