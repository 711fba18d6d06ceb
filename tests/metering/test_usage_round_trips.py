"""A warm usage event is two statements, a replay one (issue 9): the config stamp is read with
the key's lookup (TenantApiView.stamp_companion), and metering's SQL function debits and
inserts in one statement, outside any transaction of Django's. What a provisional API key
must never do: act after its revocation, or answer a bad body before the key is confirmed."""

import json
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from ledger.models import CreditAccount, CreditBucket, LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from metering.models import UsageEvent
from metering.usage.recorded import PRIOR_COLUMNS
from metering.usage.write import _CALL, _NO_DEBIT
from ratecards.services import ratecard_seed_example
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_revoke, tenant_suspend
from tests.metering.factories import event_json, fund

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/usage-events"
BATCH_URL = "/api/v1/usage-events/batch"


@pytest.fixture
def pack(tenant: Tenant, frozen_time: time_machine.Traveller) -> CreditBucket:
    ratecard_seed_example()
    return fund(tenant, 1000, price_minor=1000)


def _statements(client: APIClient, url: str, body: Any) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, body, format="json")
    return response, [q["sql"] for q in queries.captured_queries]


def test_a_warm_new_event_is_two_statements_and_its_replay_one(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    api_client.post(URL, event_json(idempotency_key="warm-up"), format="json")

    created, new_sql = _statements(api_client, URL, event_json(idempotency_key="evt-1"))
    replayed, replay_sql = _statements(api_client, URL, event_json(idempotency_key="evt-1"))

    assert (created.status_code, replayed.status_code) == (201, 200)
    assert replayed.json() == created.json()
    assert len(new_sql) == 2, new_sql
    assert new_sql[0].startswith("SELECT (SELECT value FROM tenants_configstamp WHERE id = 1)")
    assert "FROM metering_usage_prior(" in new_sql[0]
    assert new_sql[1].startswith("SELECT * FROM metering_usage_record(")
    assert replay_sql == new_sql[:1]
    # Both in one transaction of their own: committed, and the ledger agrees with itself.
    assert UsageEvent.objects.filter(tenant=tenant).count() == 2
    assert available_get(tenant=tenant) == Decimal("998.0000")
    assert ledger_verify() == []


def test_a_batch_reads_its_keys_with_the_stamp(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    api_client.post(URL, event_json(idempotency_key="warm-up"), format="json")
    api_client.post(URL, event_json(idempotency_key="b-1"), format="json")
    events = [event_json(idempotency_key=key) for key in ("b-1", "b-2", "b-2", "b-3")]

    response, sql = _statements(api_client, BATCH_URL, {"events": events})

    assert [r["status"] for r in response.json()["results"]] == [200, 201, 200, 201]
    assert len(sql) == 2, sql
    assert UsageEvent.objects.filter(tenant=tenant).count() == 4


def test_a_key_revoked_in_another_process_is_refused_before_anything_is_written(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    api_client.post(URL, event_json(idempotency_key="warm-up"), format="json")
    # Another process revokes it: this one's cache still holds the key under the old stamp.
    api_key_revoke(api_key=ApiKey.objects.get(tenant=tenant))

    response = api_client.post(URL, event_json(idempotency_key="evt-late"), format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"
    assert not UsageEvent.objects.filter(idempotency_key="evt-late").exists()
    assert not LedgerTransaction.objects.filter(idempotency_key="usage:evt-late").exists()


def test_a_suspended_tenant_is_refused_with_its_key_cached(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    api_client.post(URL, event_json(idempotency_key="warm-up"), format="json")
    tenant_suspend(tenant=tenant)

    response = api_client.post(URL, event_json(idempotency_key="evt-late"), format="json")

    assert response.status_code == 403
    assert not UsageEvent.objects.filter(idempotency_key="evt-late").exists()


def test_a_body_that_does_not_parse_is_answered_after_the_key(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    api_client.post(URL, event_json(idempotency_key="warm-up"), format="json")

    bad = api_client.post(URL, "{not json", content_type="application/json")
    api_key_revoke(api_key=ApiKey.objects.get(tenant=tenant))
    revoked = api_client.post(URL, "{not json", content_type="application/json")

    assert bad.status_code == 400
    assert revoked.status_code == 401


def test_keys_the_database_cannot_hold_are_not_looked_up_with_the_stamp(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    api_client.post(URL, event_json(idempotency_key="warm-up"), format="json")

    response = api_client.post(URL, event_json(idempotency_key="nul\x00key"), format="json")
    batch = api_client.post(
        BATCH_URL,
        {"events": [event_json(idempotency_key="x" * 300), event_json(idempotency_key="ok")]},
        format="json",
    )

    assert response.status_code == 422
    assert [r["status"] for r in batch.json()["results"]] == [422, 201]


def test_a_free_event_records_the_tenants_currency_and_the_balance(
    api_client: APIClient, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    # Free credits only: the first statement asks for the currency, the second writes.
    ratecard_seed_example()
    fund(tenant, 100, reference="promo", source=CreditBucket.Source.PROMOTION)

    first = api_client.post(URL, event_json(idempotency_key="f-1"), format="json")
    second = api_client.post(URL, event_json(idempotency_key="f-2"), format="json")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["balance_after"] == "98.0000"
    events = UsageEvent.objects.filter(tenant=tenant).order_by("pk")
    assert [(e.revenue_minor, e.revenue_currency) for e in events] == [
        (Decimal(0), "USD"),
        (Decimal(0), "USD"),
    ]


def test_the_prior_read_returns_the_columns_python_reads_in_its_order() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT proargnames[3:] FROM pg_proc WHERE proname = 'metering_usage_prior'")
        (names,) = cursor.fetchone()
    assert tuple(names) == PRIOR_COLUMNS


@pytest.mark.parametrize(
    "function", ["ledger_debit_batch", "metering_usage_record", "metering_usage_prior"]
)
def test_the_hot_path_functions_plan_once_per_connection(function: str) -> None:
    # A custom plan per call cost the debit ~0.35 ms for its read after the lock alone.
    with connection.cursor() as cursor:
        cursor.execute("SELECT proconfig FROM pg_proc WHERE proname = %s", [function])
        (config,) = cursor.fetchone()
    assert config == ["plan_cache_mode=force_generic_plan"]


def test_events_that_charge_nothing_leave_the_ledger_alone(tenant: Tenant) -> None:
    # record_v2.sql calls the ledger only when a charge is sent (a one-time filter on the
    # statement): called with no charge, ledger_debit_batch would lock the tenant's account,
    # and create one for a tenant that has none.
    version = ratecard_seed_example().versions.get()
    event = {
        "rate_card_version_id": version.pk,
        "idempotency_key": "free-1",
        "request_hash": "h",
        "action": "chat",
        "model_class": "",
        "quantity": "1",
        "occurred_at": "2026-01-15T12:00:00+00:00",
        "labels": {},
        "outcome": "success",
        "credits": "0",
        **dict.fromkeys(
            ["input_tokens", "output_tokens", "tool_calls", "vector_reads", "orchestration_runs"], 0
        ),
        "gpu_seconds": "0",
        "cogs_minor": "0",
        "cogs_currency": "USD",
    }
    with connection.cursor() as cursor:
        cursor.execute(
            _CALL,
            [tenant.pk, timezone.now(), *_NO_DEBIT, json.dumps([event]), "USD", Decimal("0")],
        )
        rows = cursor.fetchall()
    assert [(row[13], row[19]) for row in rows] == [("free-1", Decimal("0.0000"))]
    assert not CreditAccount.objects.filter(tenant=tenant).exists()
