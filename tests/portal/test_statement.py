"""The statement page and its CSV, against the ledger's own rows: exact amounts and balances
after, every page reached by its cursor, filters, formula escaping, and a number of queries
that does not grow with the ledger."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

import ledger.statement_selectors
from ledger.models import CreditBucket, LedgerEntry
from ledger.services import ledger_debit, ledger_grant
from tenants.models import Tenant
from tests.portal.conftest import Login
from tests.portal.tables import table_rows

pytestmark = pytest.mark.django_db

P = CreditBucket.Policy
S = CreditBucket.Source
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def story(tenant: Tenant, traveller: time_machine.Traveller) -> None:
    """A promotion, a subscription's month, two debits (the second split across both)."""
    traveller.move_to(T0)
    ledger_grant(
        tenant=tenant,
        credits=100,
        policy=P.PERMANENT,
        source=S.PROMOTION,
        external_reference="welcome",
    )
    traveller.move_to(T0 + timedelta(hours=1))
    ledger_grant(
        tenant=tenant,
        credits=50,
        policy=P.MONTHLY_RESET,
        source=S.SUBSCRIPTION,
        external_reference="sub-2026-01",
        expires_at=datetime(2026, 2, 1, tzinfo=UTC),
        source_type="billing.subscription",
        source_id="7",
    )
    traveller.move_to(T0 + timedelta(days=1))
    ledger_debit(
        tenant=tenant,
        amount=Decimal(30),
        idempotency_key="usage:evt-1",
        source_type="usage_event",
        source_id="evt-1",
    )
    traveller.move_to(T0 + timedelta(days=2))
    ledger_debit(
        tenant=tenant,
        amount=Decimal(40),
        idempotency_key="usage:evt-2",
        source_type="usage_event",
        source_id="evt-2",
    )


def test_the_statement_shows_each_entry_with_its_balance_after(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    story(tenant, frozen_time)
    sub = CreditBucket.objects.get(external_reference="sub-2026-01").pk
    promo = CreditBucket.objects.get(external_reference="welcome").pk

    response = login(tenant, role="member").get("/statement/")

    assert response.status_code == 200
    assert table_rows(response, "Statement entries") == [
        [
            "2026-01-17 12:00",
            "Debit",
            "-20.0000",
            f"Promotion · Permanent #{promo}",
            "80.0000",
            "Usage event evt-2",
        ],
        [
            "2026-01-17 12:00",
            "Debit",
            "-20.0000",
            f"Subscription · Monthly reset #{sub}",
            "100.0000",
            "Usage event evt-2",
        ],
        [
            "2026-01-16 12:00",
            "Debit",
            "-30.0000",
            f"Subscription · Monthly reset #{sub}",
            "120.0000",
            "Usage event evt-1",
        ],
        [
            "2026-01-15 13:00",
            "Grant",
            "50.0000",
            f"Subscription · Monthly reset #{sub}",
            "150.0000",
            "Subscription 7",
        ],
        [
            "2026-01-15 12:00",
            "Grant",
            "100.0000",
            f"Promotion · Permanent #{promo}",
            "100.0000",
            "—",
        ],
    ]


def test_the_rows_are_the_ledgers_entries_newest_first(
    login: Login, tenant: Tenant, other_tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    story(tenant, frozen_time)
    story(other_tenant, frozen_time)

    rows = table_rows(login(tenant).get("/statement/"), "Statement entries")

    entries = LedgerEntry.objects.filter(tenant=tenant).order_by("-created_at", "-id")
    assert [(r[2], r[4]) for r in rows] == [
        (f"{e.amount:.4f}", f"{e.balance_after:.4f}") for e in entries
    ]
    # Each part of a split debit reports the balance right after that part: with no
    # reservations, balance after is the running sum of the amounts, oldest first.
    assert [e.balance_after for e in entries] == [80, 100, 120, 150, 100]
    running, sums = Decimal(0), []
    for entry in reversed(entries):
        running += entry.amount
        sums.append(running)
    assert sums[::-1] == [e.balance_after for e in entries]


def test_filters_by_kind_and_by_days_both_ends_included(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    story(tenant, frozen_time)
    client = login(tenant)

    debits = table_rows(client.get("/statement/?kind=debit"), "Statement entries")
    one_day = table_rows(
        client.get("/statement/?since=2026-01-16&until=2026-01-16"), "Statement entries"
    )
    backwards = client.get("/statement/?since=2026-01-16&until=2026-01-15")

    assert [r[2] for r in debits] == ["-20.0000", "-20.0000", "-30.0000"]
    assert [r[2] for r in one_day] == ["-30.0000"]
    assert backwards.status_code == 400
    assert "The end of the range is before its start." in backwards.content.decode()
    assert backwards.context["rows"] == []  # not every entry, as if nothing was asked
    assert "No entries shown: correct the filter above." in backwards.content.decode()


def _many(tenant: Tenant, count: int) -> None:
    ledger_grant(
        tenant=tenant, credits=10_000, policy=P.PERMANENT, source=S.TOPUP, external_reference="pack"
    )
    for i in range(count):
        ledger_debit(tenant=tenant, amount=Decimal(1), idempotency_key=f"usage:k{i}")


def test_every_page_follows_the_last_with_nothing_repeated_or_lost(
    login: Login, tenant: Tenant
) -> None:
    _many(tenant, 119)  # 120 entries: pages of 50, 50 and 20
    client = login(tenant)

    seen: list[str] = []
    url: str | None = "/statement/"
    pages = 0
    while url:
        response = client.get(url)
        seen += [r[4] for r in table_rows(response, "Statement entries")]
        pages += 1
        nxt = response.context["page"].next_after
        url = f"/statement/?after={nxt}" if nxt else None

    expected = LedgerEntry.objects.filter(tenant=tenant).order_by("-created_at", "-id")
    assert pages == 3
    assert seen == [f"{e.balance_after:.4f}" for e in expected]
    assert (seen[0], seen[-1]) == ("9881.0000", "10000.0000")


def test_another_tenants_entry_id_is_no_cursor(
    login: Login, tenant: Tenant, other_tenant: Tenant
) -> None:
    _many(tenant, 3)
    _many(other_tenant, 3)
    foreign = LedgerEntry.objects.filter(tenant=other_tenant).order_by("id").first()
    assert foreign is not None

    rows = table_rows(login(tenant).get(f"/statement/?after={foreign.pk}"), "Statement entries")

    assert len(rows) == 4  # the first page of tenant A, nothing of B


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_queries_per_page_do_not_grow_with_the_ledger(login: Login, tenant: Tenant) -> None:
    client = login(tenant)
    _many(tenant, 1)
    one = _queries(client, "/statement/")
    second_of_one = _queries(client, f"/statement/?after={LedgerEntry.objects.last().pk}")  # type: ignore[union-attr]

    _many_more = [
        ledger_debit(tenant=tenant, amount=Decimal(1), idempotency_key=f"usage:m{i}")
        for i in range(150)
    ]
    many = _queries(client, "/statement/")
    middle = LedgerEntry.objects.order_by("-created_at", "-id")[60].pk

    assert len(_many_more) == 150
    assert many == one
    assert _queries(client, f"/statement/?after={middle}") == second_of_one


def _csv(response: object) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.reader(io.StringIO(body)))


def test_the_csv_is_the_ledger_row_by_row(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    story(tenant, frozen_time)

    response = login(tenant, role="member").get("/statement.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == 'attachment; filename="statement-acme.csv"'
    header, *rows = _csv(response)
    assert header == [
        "created_at",
        "entry_id",
        "transaction_id",
        "kind",
        "amount",
        "bucket_id",
        "bucket_source",
        "bucket_policy",
        "balance_after",
        "source_type",
        "source_id",
        "memo",
    ]
    entries = LedgerEntry.objects.filter(tenant=tenant).select_related("transaction", "bucket")
    assert rows == [
        [
            e.created_at.isoformat(),
            str(e.pk),
            str(e.transaction_id),
            e.kind,
            f"{e.amount:.4f}",
            str(e.bucket_id),
            e.bucket.source if e.bucket else "",
            e.bucket.policy if e.bucket else "",
            f"{e.balance_after:.4f}",
            e.transaction.source_type,
            e.transaction.source_id,
            e.transaction.memo,
        ]
        for e in entries.order_by("created_at", "id")
    ]
    assert [r[4] for r in rows] == ["100.0000", "50.0000", "-30.0000", "-20.0000", "-20.0000"]


def test_the_csv_takes_the_pages_filters(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    story(tenant, frozen_time)

    rows = _csv(login(tenant).get("/statement.csv?kind=grant&since=2026-01-15&until=2026-01-15"))

    assert [(r[3], r[4]) for r in rows[1:]] == [("grant", "100.0000"), ("grant", "50.0000")]


def test_a_range_to_the_calendars_last_day_has_no_end(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    story(tenant, frozen_time)
    client = login(tenant)

    page = client.get("/statement/?kind=debit&since=2026-01-16&until=9999-12-31")
    rows = _csv(client.get("/statement.csv?kind=debit&since=2026-01-16&until=9999-12-31"))

    assert page.status_code == 200
    assert [r[2] for r in table_rows(page, "Statement entries")] == [
        "-20.0000",
        "-20.0000",
        "-30.0000",
    ]
    assert [r[4] for r in rows[1:]] == ["-30.0000", "-20.0000", "-20.0000"]  # oldest first


def test_csv_cells_a_spreadsheet_would_run_are_escaped(login: Login, tenant: Tenant) -> None:
    ledger_grant(
        tenant=tenant,
        credits=10,
        policy=P.PERMANENT,
        source=S.TOPUP,
        external_reference="pack",
        source_type="=cmd|' /C calc'!A0",
        source_id="+1+1",
        memo="@SUM(A1:A9)",
    )
    ledger_debit(
        tenant=tenant,
        amount=Decimal(1),
        idempotency_key="usage:x",
        source_id="-2+3",
        memo="plain words",
    )

    _, grant, debit = _csv(login(tenant).get("/statement.csv"))

    assert grant[9:] == ["'=cmd|' /C calc'!A0", "'+1+1", "'@SUM(A1:A9)"]
    assert debit[9:] == ["", "'-2+3", "plain words"]
    assert debit[4] == "-1.0000"  # a number the portal wrote stays a number


def test_a_range_too_long_to_export_is_refused_with_advice(
    login: Login, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many(tenant, 3)  # 4 entries
    monkeypatch.setattr(ledger.statement_selectors, "STATEMENT_EXPORT_MAX", 3)
    client = login(tenant)

    refused = client.get("/statement.csv")
    monkeypatch.setattr(ledger.statement_selectors, "STATEMENT_EXPORT_MAX", 4)
    allowed = client.get("/statement.csv")

    assert refused.status_code == 400
    assert "choose a shorter one to export" in refused.content.decode()
    assert allowed.status_code == 200
    assert len(_csv(allowed)) == 5


def test_the_export_reads_in_chunks_and_loses_no_row(
    login: Login, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many(tenant, 9)  # 10 entries, chunks of 3
    monkeypatch.setattr(ledger.statement_selectors, "EXPORT_CHUNK", 3)

    rows = _csv(login(tenant).get("/statement.csv"))[1:]

    expected = LedgerEntry.objects.filter(tenant=tenant).order_by("created_at", "id")
    assert [r[1] for r in rows] == [str(e.pk) for e in expected]
