"""The usage page and its CSV exports, against the real database: exact figures from the
rollup, equal to the statement's for the range; CSV rows checked one by one against the events
and the ledger; a large export made by its job; formula escaping; another tenant's export."""

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D  # noqa: N817
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.models import TenantBilling
from billing.services.tenant_billing import credits_display_set
from ledger.models import LedgerEntry, LedgerTransaction
from ledger.services import ledger_reverse
from metering import exports
from metering.models import UsageEvent, UsageExport
from metering.rollup import usage_rollup_update
from metering.services import usage_event_record
from metering.tasks import usage_export_run_task
from metering.workflows import workflow_start, workflow_step
from ratecards.services import ratecard_seed_example
from tenants.models import OutboxMessage, Tenant
from tests.metering.factories import UsageInputFactory, fund
from tests.portal.conftest import Login
from tests.portal.tables import table_rows

pytestmark = pytest.mark.django_db

JAN14, JAN15 = date(2026, 1, 14), date(2026, 1, 15)
RANGE = {"since": "2026-01-14", "until": "2026-01-15"}


def _record(tenant: Tenant, key: str, action: str, quantity: str = "1", **fields: Any) -> None:
    data = replace(
        UsageInputFactory.build(idempotency_key=key, action=action, quantity=D(quantity)),
        **fields,
    )
    usage_event_record(tenant=tenant, data=data)


@pytest.fixture
def usage(tenant: Tenant, frozen_time: time_machine.Traveller) -> Tenant:
    """Jan 13 (outside the range): a chat. Jan 14: chat x2, a turbo web research (60) whose
    key is a formula, a doc search with labels. Jan 15 (now, 12:00): a step of the `@triage`
    run, a chat, and a refund of 20 of the web research's 60 credits."""
    frozen_time.move_to("2026-01-13 09:00:00+00:00")
    ratecard_seed_example()
    fund(tenant, 1000)
    _record(tenant, "before", "chat")
    frozen_time.move_to("2026-01-14 10:00:00+00:00")
    _record(tenant, "e1", "chat", "2")
    _record(tenant, '=HYPERLINK("http://x")', "web_research", model_class="turbo")
    _record(tenant, "e3", "doc_search", labels={"project": "+1 555"})
    frozen_time.move_to("2026-01-15 12:00:00+00:00")
    run, _ = workflow_start(tenant=tenant, external_id="run-1", name="@triage")
    step = UsageInputFactory.build(idempotency_key="s1", action="doc_search", quantity=D(2))
    workflow_step(tenant=tenant, run=run, data=step)
    _record(tenant, "e5", "chat")
    debit = LedgerTransaction.objects.get(
        tenant=tenant, idempotency_key='usage:=HYPERLINK("http://x")'
    )
    ledger_reverse(tenant=tenant, debit=debit, idempotency_key="refund-e2", amount=D(20))
    usage_rollup_update()
    return tenant


def _statement(tenant: Tenant, kinds: list[str]) -> D:
    """What the statement shows for Jan 14-15 (UTC days, both included) of these kinds."""
    total = LedgerEntry.objects.filter(
        tenant=tenant,
        kind__in=kinds,
        created_at__gte=datetime(2026, 1, 14, tzinfo=UTC),
        created_at__lt=datetime(2026, 1, 16, tzinfo=UTC),
    ).aggregate(total=Sum("amount"))["total"]
    return -D(total)


def _csv(response: Any) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def _export(client: Client, kind: str) -> UsageExport:
    response = client.post("/usage/exports/", {**RANGE, "kind": kind})
    export = UsageExport.objects.get()
    assert (response.status_code, response["Location"]) == (302, f"/usage/exports/{export.pk}/")
    return export


def test_the_page_shows_the_rollup_and_its_totals_equal_the_statement(
    login: Login, usage: Tenant
) -> None:
    client = login(usage, role="member")

    page = client.get("/usage/", {**RANGE, "stack": "action"})

    assert page.status_code == 200
    # Spent on the two days: debits 2 + 60 + 3 (Jan 14) + 6 + 1 (Jan 15) = 72, less the
    # refund of 20 (a reversal on Jan 15) = 52.
    assert (_statement(usage, ["debit"]), _statement(usage, ["debit", "reversal"])) == (
        D("72.0000"),
        D("52.0000"),
    )
    chart = json.loads(
        page.content.decode()
        .split('id="usage-chart-data" type="application/json">')[1]
        .split("</script>")[0]
    )
    assert chart["labels"] == ["2026-01-14", "2026-01-15"]
    assert [(s["label"], s["values"]) for s in chart["series"]] == [
        ("web_research", ["60.0000", "-20.0000"]),
        ("doc_search", ["3.0000", "6.0000"]),
        ("chat", ["2.0000", "1.0000"]),
    ]
    chart_total = sum((D(v) for s in chart["series"] for v in s["values"]), D(0))
    table_total = sum((row.credits for row in page.context["rows"]), D(0))
    assert chart_total == table_total == page.context["totals"].credits == D("52.0000")
    assert [
        (r.key["action"], r.key["model_class"], r.key["workflow"], r.events, r.credits)
        for r in page.context["rows"]
    ] == [
        ("web_research", "turbo", "", 1, D("40.0000")),
        ("doc_search", "", "@triage", 1, D("6.0000")),
        ("chat", "", "", 2, D("3.0000")),  # a tie on credits: by action
        ("doc_search", "", "", 1, D("3.0000")),
    ]
    html = page.content.decode()
    assert "Usage as of 2026-01-15 12:00:00 UTC" in html
    # The chart's text alternative: its label and the same figures as a table.
    assert 'role="img" aria-label="Bar chart of credits used each day from 2026-01-14 to' in html
    assert '<th scope="row">2026-01-15</th>' in html


def test_a_tenant_shown_money_sees_its_spend(login: Login, usage: Tenant) -> None:
    # Invisible credits at 1.5 cents a credit: the same figures as money, rounded to the cent
    # per cell (the 52 credits net: 0.78 USD).
    TenantBilling.objects.create(tenant=usage, currency="USD")
    credits_display_set(tenant_id=usage.pk, display="money", minor_per_credit=D("1.5"))

    page = login(usage, role="member").get("/usage/", {**RANGE, "stack": "action"})

    html = page.content.decode()
    chart = json.loads(
        html.split('id="usage-chart-data" type="application/json">')[1].split("</script>")[0]
    )
    assert (chart["unit"], [s["values"] for s in chart["series"]]) == (
        "USD",
        [["0.90", "-0.30"], ["0.05", "0.09"], ["0.03", "0.02"]],
    )
    assert '<span class="big" id="usage-total">0.78 USD</span>' in html
    assert table_rows(page, "Usage by action, model class and workflow") == [
        ["web_research", "turbo", "(none)", "1", "1.0000", "0.60 USD"],
        ["doc_search", "standard", "@triage", "1", "2.0000", "0.09 USD"],
        ["chat", "standard", "(none)", "2", "3.0000", "0.05 USD"],
        ["doc_search", "standard", "(none)", "1", "1.0000", "0.05 USD"],
    ]
    figures = html.split('id="usage-chart-title"')[1].split('id="usage-export-title"')[0]
    assert "credits" not in figures.lower()


def test_stacked_by_model_class(login: Login, usage: Tenant) -> None:
    page = login(usage).get("/usage/", {**RANGE, "stack": "model_class"})

    assert [(s.label, s.values) for s in page.context["series"]] == [
        ("turbo", [D("60.0000"), D("-20.0000")]),
        ("standard", [D("5.0000"), D("7.0000")]),
    ]


def test_a_bad_range_is_a_422_naming_the_field(login: Login, usage: Tenant) -> None:
    client = login(usage)

    backwards = client.get("/usage/", {"since": "2026-01-15", "until": "2026-01-14"})
    too_long = client.get("/usage/", {"since": "2024-01-01", "until": "2026-01-14"})
    not_a_date = client.get("/usage/", {"since": "yesterday"})

    assert (backwards.status_code, too_long.status_code, not_a_date.status_code) == (422,) * 3
    assert "The last day comes on or after the first." in backwards.content.decode()
    assert "A range covers 366 days at most." in too_long.content.decode()
    assert "Enter a valid date." in not_a_date.content.decode()


def test_a_range_ending_on_the_calendars_first_days_starts_on_its_first_day(
    login: Login, usage: Tenant
) -> None:
    client = login(usage)

    page = client.get("/usage/", {"until": "0001-01-05"})

    assert page.status_code == 200
    assert (page.context["since"], page.context["until"]) == (date(1, 1, 1), date(1, 1, 5))


def test_the_page_costs_the_same_statements_whatever_the_data(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    ratecard_seed_example()
    fund(tenant, 10_000)
    client = login(tenant)
    client.get("/usage/")  # warm the session and the caches

    def statements() -> int:
        usage_rollup_update()
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/usage/").status_code == 200
        return len(queries)

    _record(tenant, "one", "chat")
    few = statements()
    for day in range(1, 11):  # ten more days of three actions (within the session's life)
        frozen_time.move_to(datetime(2026, 1, 15, 8, tzinfo=UTC) + timedelta(days=day))
        for n in range(3):
            _record(tenant, f"d{day}-{n}", ["chat", "doc_search", "web_research"][n])
    many = statements()

    assert few == many


def test_the_events_csv_row_by_row_against_the_events_and_the_ledger(
    login: Login, usage: Tenant
) -> None:
    client = login(usage, role="member")

    export = _export(client, "events")
    download = client.get(f"/usage/exports/{export.pk}/download")

    assert download.status_code == 200
    assert download["Content-Disposition"] == (
        'attachment; filename="usage-events-acme-2026-01-14-2026-01-15.csv"'
    )
    header, *rows = _csv(download)
    assert header == list(exports.EVENT_COLUMNS)
    events = list(
        UsageEvent.objects.filter(tenant=usage, created_at__date__gte=JAN14).order_by(
            "created_at", "id"
        )
    )
    assert len(rows) == len(events) == 5
    for row, event in zip(rows, events, strict=True):
        cells = dict(zip(header, row, strict=True))
        entries = LedgerEntry.objects.filter(
            tenant=usage, kind="debit", transaction_id=event.ledger_transaction_id
        )
        assert -D(entries.aggregate(t=Sum("amount"))["t"]) == D(cells["credits"]) == event.credits
        assert {e.created_at.isoformat() for e in entries} == {cells["recorded_at"]}
        assert cells["idempotency_key"].lstrip("'") == event.idempotency_key
        assert (cells["action"], cells["quantity"]) == (event.action, str(event.quantity))
    assert [r[2] for r in rows] == ["e1", '\'=HYPERLINK("http://x")', "e3", "s1", "e5"]
    assert [r[8] for r in rows] == ["", "", "", "'@triage", ""]
    assert rows[2][11] == '{"project": "+1 555"}'  # JSON text: begins with a brace
    assert sum((D(r[6]) for r in rows), D(0)) == _statement(usage, ["debit"]) == D("72.0000")


def test_the_daily_totals_csv_equals_the_statement_and_keeps_negative_numbers(
    login: Login, usage: Tenant
) -> None:
    client = login(usage)

    export = _export(client, "days")
    header, *rows = _csv(client.get(f"/usage/exports/{export.pk}/download"))

    assert header == list(exports.DAY_COLUMNS)
    assert rows == [
        ["2026-01-14", "chat", "", "", "1", "2.0000", "2.0000", "0.0000"],
        ["2026-01-14", "doc_search", "", "", "1", "1.0000", "3.0000", "0.0000"],
        ["2026-01-14", "web_research", "turbo", "", "1", "1.0000", "60.0000", "0.0000"],
        ["2026-01-15", "chat", "", "", "1", "1.0000", "1.0000", "0.0000"],
        ["2026-01-15", "doc_search", "", "'@triage", "1", "2.0000", "6.0000", "0.0000"],
        # The refund: a number, not text, so no apostrophe before its minus.
        ["2026-01-15", "web_research", "turbo", "", "0", "0.0000", "-20.0000", "20.0000"],
    ]
    total = sum((D(r[6]) for r in rows), D(0))
    assert total == _statement(usage, ["debit", "reversal"]) == D("52.0000")


def test_a_large_export_runs_as_a_job_the_page_polls(
    login: Login, usage: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "INLINE_ROWS", 2)  # 5 events: too many to make in the request
    client = login(usage)

    export = _export(client, "events")
    waiting = client.get(f"/usage/exports/{export.pk}/")
    poll = client.get(f"/usage/exports/{export.pk}/", HTTP_HX_REQUEST="true")
    early = client.get(f"/usage/exports/{export.pk}/download")

    assert export.status == UsageExport.Status.PENDING
    message = OutboxMessage.objects.get(task="metering.usage_export_run")
    assert message.kwargs == {"export_id": export.pk}
    assert "Preparing the file" in waiting.content.decode()
    assert f'hx-get="/usage/exports/{export.pk}/" hx-trigger="every 2s"' in poll.content.decode()
    assert "<html" not in poll.content.decode()
    assert early.status_code == 404

    assert usage_export_run_task(**message.kwargs) == "done"
    assert usage_export_run_task(**message.kwargs) == "skipped"  # a second copy does nothing

    export.refresh_from_db()
    ready = client.get(f"/usage/exports/{export.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert (export.status, export.rows) == (UsageExport.Status.DONE, 5)
    assert "hx-trigger" not in ready
    assert f'href="/usage/exports/{export.pk}/download"' in ready
    _header, *rows = _csv(client.get(f"/usage/exports/{export.pk}/download"))
    assert [r[2] for r in rows] == ["e1", '\'=HYPERLINK("http://x")', "e3", "s1", "e5"]


def test_a_file_in_several_parts_reads_back_whole(
    login: Login, usage: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "PART_CHARS", 100)
    client = login(usage)

    export = _export(client, "events")
    _header, *rows = _csv(client.get(f"/usage/exports/{export.pk}/download"))

    assert export.parts.count() > 2
    assert len(rows) == 5


def test_another_tenants_export_is_a_404(login: Login, usage: Tenant, other_tenant: Tenant) -> None:
    export = _export(login(usage), "days")
    stranger = login(other_tenant)

    page = stranger.get(f"/usage/exports/{export.pk}/")
    download = stranger.get(f"/usage/exports/{export.pk}/download")
    missing = stranger.get("/usage/exports/999999/")

    assert (page.status_code, download.status_code, missing.status_code) == (404, 404, 404)
    assert "No such export" in page.content.decode()


def test_an_export_refuses_a_bad_range_naming_the_field(login: Login, usage: Tenant) -> None:
    client = login(usage)

    backwards = client.post(
        "/usage/exports/", {"since": "2026-01-15", "until": "2026-01-14", "kind": "events"}
    )
    unknown = client.post("/usage/exports/", {**RANGE, "kind": "everything"})

    assert (backwards.status_code, unknown.status_code) == (422, 422)
    assert "To: The last day comes on or after the first." in backwards.content.decode()
    assert "Export: choose one of events, days." in unknown.content.decode()
    assert not UsageExport.objects.exists()


def test_formula_cells_are_escaped_and_numbers_are_not() -> None:
    assert [exports.csv_text(v) for v in ["=1+1", "+1", "-1", "@x", "\tx", "\rx", "a=b", ""]] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@x",
        "'\tx",
        "'\rx",
        "a=b",
        "",
    ]
