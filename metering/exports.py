"""CSV exports of a tenant's usage over UTC days (both ends included): its events, one row
each, or the rollup's daily totals by action, model class and workflow.

Days are those the rollup uses: an event belongs to the UTC day it was recorded (`created_at`,
the date of its debit), so an export's credits for a range equal the statement's debits for
those days, as the usage page's chart and table do. The events file lists what each event was
charged; refunds show in the daily totals (`credits` net of them, `credits_refunded` apart) and
in the statement.

How an export runs: `usage_export_request` writes the UsageExport row; a small one (what the
rollup counts for the range is at most INLINE_ROWS rows) is made there and then, a larger one
by the Celery task `metering.usage_export_run`, enqueued through the outbox, so no request
works longer than a page does. The task makes the whole file in one transaction holding the
export's row lock: a second copy (a redelivery, the outbox's sweep) skips it while it runs and
finds it done after, and a worker killed half-way leaves nothing behind (acks_late runs it
again).

Where the file goes: into the database, as UsageExportPart rows of about 1 MB, read back in
order by the download. Web and worker processes are stateless and may run on different
machines (DESIGN, "Scale"); a file a worker writes under var/ or MEDIA_ROOT is not on the web
machine without shared storage, which this project does not set up, while the database is the
one store every process already shares. The parts are written in the transaction that marks
the export done, so a ready export always has its whole file, and deleting the row deletes the
file. An export is kept EXPORT_KEEP: an expired one is no longer listed or served, and is
deleted with its file by the hourly purge (`usage_exports_purge`, the beat's
`metering.usage_exports_purge`), or sooner when its tenant asks for the next one.

Cells: text that came from outside (keys, model classes, workflow names, labels) and begins
with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading apostrophe, so a
spreadsheet shows it instead of running it (OWASP, "CSV Injection"); numbers are written as
plain decimals and stay numbers. Customers' files carry credits and counts, never the vendor's
cost.
"""

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from metering.locks import usage_export_lock
from metering.models import UsageDay, UsageEvent, UsageExport, UsageExportPart
from tenants.models import Tenant
from tenants.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

RUN_TASK = "metering.usage_export_run"
# Largest range one export covers, in days (a year and a leap day).
MAX_DAYS = 366
# What the rollup counts for the range (events, or daily rows) up to which the file is made in
# the request: a few thousand rows take well under a second.
INLINE_ROWS = 5_000
EXPORT_KEEP = timedelta(days=7)
# Expired exports deleted per transaction by the purge (each may hold many 1 MB parts).
PURGE_BATCH = 100
PART_CHARS = 1_000_000
FETCH = 2_000

EVENT_COLUMNS = (
    "recorded_at",
    "occurred_at",
    "idempotency_key",
    "action",
    "model_class",
    "quantity",
    "credits",
    "outcome",
    "workflow",
    "workflow_run_id",
    "step_index",
    "labels",
)
DAY_COLUMNS = (
    "day",
    "action",
    "model_class",
    "workflow",
    "events",
    "quantity",
    "credits",
    "credits_refunded",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class InvalidExport(ValueError):
    """A range or kind the export cannot take; `field` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def csv_text(value: str) -> str:
    """Text from outside, made safe for a spreadsheet (a leading apostrophe)."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def day_bounds(since: date, until: date) -> tuple[datetime, datetime]:
    """The instants a range of UTC days covers: [since 00:00, the day after until 00:00)."""
    return (
        datetime.combine(since, time.min, tzinfo=UTC),
        datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC),
    )


def usage_export_check(*, kind: str, since: date, until: date) -> None:
    if kind not in UsageExport.Kind.values:
        raise InvalidExport("kind", f"choose one of {', '.join(UsageExport.Kind.values)}.")
    if until < since:
        raise InvalidExport("until", "the last day comes on or after the first.")
    if (until - since).days + 1 > MAX_DAYS:
        raise InvalidExport("until", f"an export covers {MAX_DAYS} days at most.")


def usage_export_request(
    *, tenant: Tenant, kind: str, since: date, until: date, user_id: int | None
) -> UsageExport:
    """A new export of the tenant's usage; made now when small, else by the job."""
    usage_export_check(kind=kind, since=since, until=until)
    now = timezone.now()
    with transaction.atomic():
        UsageExport.objects.filter(tenant=tenant, expires_at__lte=now).delete()
        export = UsageExport.objects.create(
            tenant=tenant,
            kind=kind,
            since=since,
            until=until,
            requested_by_id=user_id,
            created_at=now,
            expires_at=now + EXPORT_KEEP,
        )
        small = _expected_rows(export) <= INLINE_ROWS
        if not small:
            outbox_enqueue(RUN_TASK, {"export_id": export.pk})
    if small:
        usage_export_run(export_id=export.pk)
        export.refresh_from_db()
    return export


def usage_exports_purge() -> int:
    """Delete every tenant's expired exports and their files, PURGE_BATCH a transaction;
    returns how many. Safe to run twice at once: a row the other copy deleted first is
    deleted once, by it. Reads the table without an index on `expires_at` (indexes here start
    with the tenant): the purge keeps it to about a week of exports."""
    now = timezone.now()
    purged = 0
    while True:
        with transaction.atomic():
            ids = list(
                UsageExport.objects.filter(expires_at__lte=now)
                .order_by("pk")
                .values_list("pk", flat=True)[:PURGE_BATCH]
            )
            if not ids:
                return purged
            # Their parts go too (CASCADE); a row another copy deleted first is not counted.
            _, deleted = UsageExport.objects.filter(pk__in=ids).delete()
        purged += deleted.get(UsageExport._meta.label, 0)


def _expected_rows(export: UsageExport) -> int:
    days = UsageDay.objects.filter(
        tenant_id=export.tenant_id, day__gte=export.since, day__lte=export.until
    )
    if export.kind == UsageExport.Kind.DAYS:
        return days.count()
    return int(days.aggregate(n=Sum("events"))["n"] or 0)


def usage_export_run(*, export_id: int) -> str:
    """Make an export's file (the task's body, and the request's for a small one). Returns
    what happened: `done`, `failed`, `busy` (another copy is making it) or `skipped`."""
    try:
        with transaction.atomic():
            export = usage_export_lock(export_id=export_id)
            if export is None:
                return "busy"
            if export.status != UsageExport.Status.PENDING:
                return "skipped"
            _write(export)
            return "done"
    except Exception as error:
        logger.exception("usage export %s failed", export_id)
        UsageExport.objects.filter(pk=export_id, status=UsageExport.Status.PENDING).update(
            status=UsageExport.Status.FAILED,
            error=f"The export could not be made ({type(error).__name__}).",
            finished_at=timezone.now(),
        )
        return "failed"


def _write(export: UsageExport) -> None:
    rows = _event_rows(export) if export.kind == UsageExport.Kind.EVENTS else _day_rows(export)
    columns = EVENT_COLUMNS if export.kind == UsageExport.Kind.EVENTS else DAY_COLUMNS
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    count = size = number = 0

    def flush() -> None:
        nonlocal size, number
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        number += 1
        size += len(text)
        UsageExportPart.objects.create(
            tenant_id=export.tenant_id, export=export, number=number, text=text
        )

    for row in rows:
        writer.writerow(row)
        count += 1
        if buffer.tell() >= PART_CHARS:
            flush()
    flush()
    export.status = UsageExport.Status.DONE
    export.rows = count
    export.size = size
    export.finished_at = timezone.now()
    export.save(update_fields=["status", "rows", "size", "finished_at"])


def _event_rows(export: UsageExport) -> Iterator[list[Any]]:
    start, end = day_bounds(export.since, export.until)
    events = (
        UsageEvent.objects.filter(
            tenant_id=export.tenant_id, created_at__gte=start, created_at__lt=end
        )
        .order_by("created_at", "id")
        .values_list(
            "created_at",
            "occurred_at",
            "idempotency_key",
            "action",
            "model_class",
            "quantity",
            "credits",
            "outcome",
            "workflow_run__name",
            "workflow_run_id",
            "step_index",
            "labels",
        )
    )
    for (
        created,
        occurred,
        key,
        action,
        model_class,
        qty,
        credits,
        outcome,
        *rest,
    ) in events.iterator(chunk_size=FETCH):
        workflow, run_id, step_index, labels = rest
        yield [
            created.astimezone(UTC).isoformat(),
            occurred.astimezone(UTC).isoformat(),
            csv_text(key),
            csv_text(action),
            csv_text(model_class),
            qty,
            credits,
            outcome,
            csv_text(workflow or ""),
            run_id or "",
            "" if step_index is None else step_index,
            csv_text(json.dumps(labels, sort_keys=True)) if labels else "",
        ]


def usage_day_totals(*, tenant: Tenant, since: date, until: date) -> QuerySet[UsageDay, Any]:
    """The rollup's rows for the range by day, action, model class and workflow (summed over
    the vendor's cost currencies, which customers do not see), oldest first."""
    return (
        UsageDay.objects.filter(tenant=tenant, day__gte=since, day__lte=until)
        .values("day", "action", "model_class", "workflow")
        .annotate(
            n=Sum("events"),
            qty=Sum("quantity"),
            total=Sum("credits"),
            refunded=Sum("credits_refunded"),
        )
        .order_by("day", "action", "model_class", "workflow")
    )


def _day_rows(export: UsageExport) -> Iterable[list[Any]]:
    rows = usage_day_totals(tenant=export.tenant, since=export.since, until=export.until)
    for row in rows.iterator(chunk_size=FETCH):
        yield [
            row["day"].isoformat(),
            csv_text(row["action"]),
            csv_text(row["model_class"]),
            csv_text(row["workflow"]),
            row["n"],
            row["qty"],
            row["total"],
            row["refunded"],
        ]


def usage_export_get(*, tenant: Tenant, export_id: int) -> UsageExport:
    """The tenant's export (UsageExport.DoesNotExist for another tenant's or an expired one)."""
    return UsageExport.objects.get(tenant=tenant, pk=export_id, expires_at__gt=timezone.now())


def usage_export_list(*, tenant: Tenant, limit: int = 5) -> list[UsageExport]:
    """The tenant's latest exports that have not expired, newest first."""
    return list(
        UsageExport.objects.filter(tenant=tenant, expires_at__gt=timezone.now()).order_by(
            "-created_at", "-id"
        )[:limit]
    )


def usage_export_chunks(*, export: UsageExport) -> Iterator[bytes]:
    """The file, part by part (one query, read as it is sent)."""
    parts = (
        UsageExportPart.objects.filter(tenant_id=export.tenant_id, export=export)
        .order_by("number")
        .values_list("text", flat=True)
    )
    for text in parts.iterator(chunk_size=1):
        yield text.encode()
