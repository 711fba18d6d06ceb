"""The ledger's HTTP contract: /balance, /ledger-entries, /buckets."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from billing.services import alert_settings_update
from ledger.models import CreditBucket, LedgerEntry
from ledger.services import (
    credit_account_update,
    ledger_debit,
    ledger_grant,
    ledger_hold_place,
)
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

P = CreditBucket.Policy
S = CreditBucket.Source
D = Decimal
PERIOD_END = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def story(tenant: Tenant, frozen_time: time_machine.Traveller) -> dict[str, CreditBucket]:
    """A subscription bucket, a pack, 30 credits spent and 10 held, all on 2026-01-15 12:00."""
    sub = ledger_grant(
        tenant=tenant,
        credits=100,
        policy=P.MONTHLY_RESET,
        source=S.SUBSCRIPTION,
        external_reference="sub-1",
        expires_at=PERIOD_END,
    ).bucket
    pack = ledger_grant(
        tenant=tenant,
        credits=50,
        policy=P.PERMANENT,
        source=S.TOPUP,
        external_reference="pack-1",
        price_minor=1000,
    ).bucket
    frozen_time.shift(timedelta(hours=1))
    ledger_debit(
        tenant=tenant,
        amount=D("30"),
        idempotency_key="evt-1",
        source_type="usage_event",
        source_id="41",
        memo="chat",
    )
    frozen_time.shift(timedelta(hours=1))
    ledger_hold_place(tenant=tenant, amount=D("10"), reference="run-7")
    return {"sub": sub, "pack": pack}


def test_balance(api_client: APIClient, story: dict[str, CreditBucket]) -> None:
    sub, pack = story["sub"], story["pack"]
    response = api_client.get("/api/v1/balance")
    assert response.status_code == 200
    assert response.json() == {
        "as_of": "2026-01-15T14:00:00Z",
        "available": "110.0000",
        "reserved": "10.0000",
        "overdraft": {"used": "0.0000", "limit": "0.0000"},
        "by_policy": {"monthly_reset": "70.0000", "permanent": "50.0000", "rolling_12m": "0.0000"},
        "next_expiry": {"at": "2026-02-01T00:00:00Z", "amount": "70.0000"},
        # Topped up to 150 by the pack; spending and holding leave it. Deprecated: the soft cap
        # (metering's, 10% of it) and the alert thresholds (billing's), one release.
        "topped_up_to": "150.0000",
        "soft_cap": "15.0000",
        "alert_thresholds": [20, 10],
        "buckets": [
            {
                "id": sub.pk,
                "source": "subscription",
                "policy": "monthly_reset",
                "granted": "100.0000",
                "remaining": "70.0000",
                "granted_at": "2026-01-15T12:00:00Z",
                "expires_at": "2026-02-01T00:00:00Z",
            },
            {
                "id": pack.pk,
                "source": "topup",
                "policy": "permanent",
                "granted": "50.0000",
                "remaining": "50.0000",
                "granted_at": "2026-01-15T12:00:00Z",
                "expires_at": None,
            },
        ],
        "buckets_url": "/api/v1/buckets",
        # The daily debit totals are kept by a job that has not run here (test_burn_rate.py).
        "burn_rate": {"7d": "0.0000", "30d": "0.0000"},
        # Credits, unless billing shows this tenant money (invisible credits).
        "display": {"unit": "credits"},
        "runs_out_at": None,
    }


def test_balance_of_a_tenant_without_credits(
    api_client: APIClient, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    credit_account_update(tenant=tenant, overdraft_limit=D("25"))
    alert_settings_update(tenant=tenant, thresholds=[50, 5])
    body = api_client.get("/api/v1/balance").json()
    assert (
        body["available"],
        body["overdraft"],
        body["next_expiry"],
        body["buckets"],
        body["topped_up_to"],
        body["alert_thresholds"],
        body["soft_cap"],
    ) == ("0.0000", {"used": "0.0000", "limit": "25.0000"}, None, [], "0.0000", [50, 5], "0.0000")


def test_ledger_entries(api_client: APIClient, story: dict[str, CreditBucket]) -> None:
    sub, pack = story["sub"], story["pack"]
    entries = {e.kind: e for e in LedgerEntry.objects.all()}
    hold_entry = entries["hold"]
    response = api_client.get("/api/v1/ledger-entries")
    assert response.status_code == 200
    body = response.json()
    assert (body["next"], body["previous"]) == (None, None)
    debit = entries["debit"]
    assert body["results"] == [
        {
            "id": hold_entry.pk,
            "kind": "hold",
            "amount": "-10.0000",
            "bucket": None,
            "hold": hold_entry.hold_id,
            "balance_after": "110.0000",
            "transaction": hold_entry.transaction_id,
            "idempotency_key": "hold:run-7",
            "source_type": "",
            "source_id": "",
            "memo": "",
            "created_at": "2026-01-15T14:00:00Z",
        },
        {
            "id": debit.pk,
            "kind": "debit",
            "amount": "-30.0000",
            "bucket": sub.pk,
            "hold": None,
            "balance_after": "120.0000",
            "transaction": debit.transaction_id,
            "idempotency_key": "evt-1",
            "source_type": "usage_event",
            "source_id": "41",
            "memo": "chat",
            "created_at": "2026-01-15T13:00:00Z",
        },
        {
            "id": debit.pk - 1,
            "kind": "grant",
            "amount": "50.0000",
            "bucket": pack.pk,
            "hold": None,
            "balance_after": "150.0000",
            "transaction": debit.transaction_id - 1,
            "idempotency_key": "grant:pack-1",
            "source_type": "",
            "source_id": "",
            "memo": "",
            "created_at": "2026-01-15T12:00:00Z",
        },
        {
            "id": debit.pk - 2,
            "kind": "grant",
            "amount": "100.0000",
            "bucket": sub.pk,
            "hold": None,
            "balance_after": "100.0000",
            "transaction": debit.transaction_id - 2,
            "idempotency_key": "grant:sub-1",
            "source_type": "",
            "source_id": "",
            "memo": "",
            "created_at": "2026-01-15T12:00:00Z",
        },
    ]


@pytest.mark.parametrize(
    ("query", "kinds"),
    [
        ("kind=grant", ["grant", "grant"]),
        ("kind=grant&kind=hold", ["hold", "grant", "grant"]),
        ("kind=debit,hold", ["hold", "debit"]),
        ("since=2026-01-15T13:00:00Z", ["hold", "debit"]),
        ("until=2026-01-15T13:00:00Z", ["grant", "grant"]),
        ("since=2026-01-15T12:30:00Z&until=2026-01-15T13:30:00Z", ["debit"]),
        ("kind=expiry", []),
    ],
)
def test_ledger_entry_filters(
    api_client: APIClient, story: dict[str, CreditBucket], query: str, kinds: list[str]
) -> None:
    body = api_client.get(f"/api/v1/ledger-entries?{query}").json()
    assert [e["kind"] for e in body["results"]] == kinds


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("kind=gift", {"kind[0]": ['"gift" is not a valid choice.']}),
        ("kind=grant,bogus", {"kind[1]": ['"bogus" is not a valid choice.']}),
        (
            "since=yesterday",
            {
                "since": [
                    "Datetime has wrong format. Use one of these formats "
                    "instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
                ]
            },
        ),
        (
            "since=2026-01-16T00:00:00Z&until=2026-01-15T00:00:00Z",
            {"until": ["Must be later than since."]},
        ),
    ],
)
def test_a_bad_filter_is_422(
    api_client: APIClient, story: dict[str, CreditBucket], query: str, fields: dict[str, object]
) -> None:
    response = api_client.get(f"/api/v1/ledger-entries?{query}")
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["fields"]) == ("invalid_input", fields)


def test_ledger_entries_are_cursor_paginated(
    api_client: APIClient, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    ledger_grant(
        tenant=tenant, credits=100, policy=P.PERMANENT, source=S.TOPUP, external_reference="pack"
    )
    for n in range(6):
        frozen_time.shift(timedelta(minutes=1))
        ledger_debit(tenant=tenant, amount=D("1"), idempotency_key=f"e{n}")
    seen: list[str] = []
    url: str | None = "/api/v1/ledger-entries?limit=3"
    pages = 0
    while url:
        body = api_client.get(url).json()
        seen += [e["idempotency_key"] for e in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 3
    assert seen == ["e5", "e4", "e3", "e2", "e1", "e0", "grant:pack"]


def test_buckets(
    api_client: APIClient,
    other_client: APIClient,
    tenant: Tenant,
    story: dict[str, CreditBucket],
    frozen_time: time_machine.Traveller,
) -> None:
    sub, pack = story["sub"], story["pack"]
    frozen_time.move_to(PERIOD_END)
    body = api_client.get("/api/v1/buckets").json()
    assert body["results"] == [
        {
            "id": pack.pk,
            "source": "topup",
            "policy": "permanent",
            "granted": "50.0000",
            "remaining": "50.0000",
            "granted_at": "2026-01-15T12:00:00Z",
            "expires_at": None,
        },
    ]
    spent = api_client.get("/api/v1/buckets?include_spent=true").json()
    assert [b["id"] for b in spent["results"]] == [pack.pk, sub.pk]
    bad = api_client.get("/api/v1/buckets?include_spent=maybe")
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"] == {"include_spent": ["Must be a valid boolean."]}
    # Another tenant sees none of it.
    assert other_client.get("/api/v1/buckets?include_spent=true").json()["results"] == []
    assert other_client.get("/api/v1/ledger-entries").json()["results"] == []
    assert other_client.get("/api/v1/balance").json()["available"] == "0.0000"


def test_the_ledger_api_needs_a_key() -> None:
    for path in ("/api/v1/balance", "/api/v1/ledger-entries", "/api/v1/buckets"):
        response = APIClient().get(path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
