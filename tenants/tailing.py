"""Reading an insert-only table exactly once, in id order, off the hot path (the rollups:
metering's daily usage, the ledger's daily debits; docs/architecture.md, "Rollups").

The rows' ids come from a sequence, but in the order they were drawn, not the order their
transactions commit: a transaction holding id 7 may commit after the one holding id 8. A
reader that remembered "done up to the highest id I saw" would skip 7 for ever. So the
watermark only passes ids that are final, every transaction that could still hold one of
them having ended:

1. Observe, in one statement (one snapshot): M, the highest id visible, and the writers, the
   transactions that hold a lock on the table's id sequence then: drawing an id (nextval, an
   INSERT's default) takes RowExclusiveLock on the sequence and keeps it to the end of the
   transaction. (The table's own lock would not do: the debit's SQL draws its transactions'
   ids in a statement of its own, before the INSERT that locks the table.)
2. Wait until none of those writers is left (they are short: the hot path's transactions).
3. Then every id up to M is final: M was drawn before the snapshot, so an id below it was
   drawn before the snapshot too, by a transaction that had already ended by then (its row is
   visible, or it rolled back) or was still running and so was a writer seen in step 1, or
   ended between the snapshot and the read of the locks. Later transactions draw ids above M.
   (A savepoint rolled back releases its lock, and its rows with it.)
4. In one transaction, under the watermark row's lock: fold the rows in (done, M] into the
   rollup and move `done` to M, so a crash or a second copy of the job counts nothing twice
   and misses nothing. Each run does this in chunks of ids; `as_of` becomes the snapshot's
   time once `done` reaches M: every row committed before it is folded in.

Why not "hold the watermark behind the oldest in-flight transaction" (pg_snapshot_xmin of the
current snapshot past the xmax remembered with M), the other sound-looking way: a transaction
gets its xid at its first write, and an INSERT draws its id just before it writes its first
row, so a transaction whose first write is that insert (metering's insert of free events,
which takes no lock before it) may hold an id below M without an xid yet; it then gets one
above the remembered xmax, and xmin may pass that xmax while it still runs. Waiting for the
writers seen in the lock table has no such gap, and it waits only for this table's writers,
not for any long transaction anywhere in the database. (A prepared transaction keeps its
locks, under a virtual transaction id of its own, so it is waited for too.) The ids must come
from the column's own sequence (`pg_get_serial_sequence`), as every writer here draws them.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, models, transaction
from django.utils import timezone

# Rows folded per transaction: a first run over a big table (or a backfill) commits its
# progress as it goes and never holds the watermark for long.
CHUNK = 50_000
# How long one run waits for the writers it saw to end (a hot-path transaction takes
# milliseconds); after that the run ends and the next one observes again.
DRAIN_TIMEOUT = 5.0
_POLL = 0.02


class Watermark(models.Model):
    """How far one table has been read: every id <= done_id is folded into the rollup; every
    row committed before as_of has been. One row per stream, locked while it moves."""

    name = models.CharField(max_length=64, unique=True)
    done_id = models.BigIntegerField(default=0)
    as_of = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name} done up to id {self.done_id}"


@dataclass(frozen=True)
class Observation:
    max_id: int
    # pg_locks.virtualtransaction of the transactions holding ids drawn by the snapshot
    writers: list[str]
    at: datetime  # no later than the snapshot: every row committed before it has id <= max_id


_OBSERVE = """
SELECT coalesce((SELECT max(id) FROM {table}), 0),
       ARRAY(SELECT DISTINCT l.virtualtransaction FROM pg_locks l
              WHERE l.locktype = 'relation' AND l.database = {database}
                AND l.relation = pg_get_serial_sequence(%s, 'id')::regclass
                AND l.pid IS DISTINCT FROM pg_backend_pid())
"""

# pg_locks covers every database of the server; relation ids are only unique within one.
_DATABASE = "(SELECT oid FROM pg_database WHERE datname = current_database())"

_WRITERS_LEFT = """
SELECT count(*) FROM pg_locks l
 WHERE l.locktype = 'relation' AND l.database = {database}
   AND l.relation = pg_get_serial_sequence(%s, 'id')::regclass
   AND l.virtualtransaction = ANY(%s::text[])
"""


def tail_observe(*, table: str) -> Observation:
    """Step 1. The caller's own transaction (a test's) is left out: its rows are visible to it."""
    # The application's clock, as every row's created_at is; read before the snapshot.
    at = timezone.now()
    with connection.cursor() as cursor:
        sql = _OBSERVE.format(table=connection.ops.quote_name(table), database=_DATABASE)
        cursor.execute(sql, [table])
        max_id, writers = cursor.fetchone()
    return Observation(max_id=max_id, writers=list(writers), at=at)


def tail_drain(*, table: str, writers: list[str], timeout: float = DRAIN_TIMEOUT) -> bool:
    """Step 2: True once none of `writers` holds its lock on the sequence (so has ended)."""
    deadline = time.monotonic() + timeout
    while writers:
        with connection.cursor() as cursor:
            cursor.execute(_WRITERS_LEFT.format(database=_DATABASE), [table, writers])
            (left,) = cursor.fetchone()
        if not left:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def tail_fold(
    *,
    watermark_model: type[Watermark],
    name: str,
    upto: Observation,
    fold: Callable[[int, int], None],
    chunk: int = CHUNK,
) -> int:
    """Step 4: `fold(lo, hi)` adds the rows with lo < id <= hi to the rollup, in the
    transaction that moves the watermark to hi; chunk after chunk up to `upto.max_id`.
    Returns how many ids the watermark moved over."""
    moved = 0
    while True:
        with transaction.atomic():
            mark = tail_watermark_lock(watermark_model=watermark_model, name=name)
            lo = mark.done_id
            if lo > upto.max_id:
                return moved  # a copy that observed later went further
            hi = min(upto.max_id, lo + chunk)
            if hi > lo:
                fold(lo, hi)
            mark.done_id = hi
            fields = ["done_id", "updated_at"]
            if hi == upto.max_id and (mark.as_of is None or mark.as_of < upto.at):
                mark.as_of = upto.at
                fields.append("as_of")
            mark.save(update_fields=fields)
            moved += hi - lo
            if hi == upto.max_id:
                return moved


def tail_watermark_lock(*, watermark_model: type[Watermark], name: str) -> Watermark:
    """The stream's watermark row, locked (made at 0 the first time)."""
    rows = watermark_model._default_manager
    rows.get_or_create(name=name)
    return rows.select_for_update().get(name=name)


def tail_run(
    *,
    table: str,
    watermark_model: type[Watermark],
    name: str,
    fold: Callable[[int, int], None],
    timeout: float = DRAIN_TIMEOUT,
) -> int | None:
    """One run of a stream: observe, wait for the writers, fold. None when the writers did not
    end within `timeout` (nothing moved; the next run observes again)."""
    seen = tail_observe(table=table)
    if not tail_drain(table=table, writers=seen.writers, timeout=timeout):
        return None
    return tail_fold(watermark_model=watermark_model, name=name, upto=seen, fold=fold)


@dataclass(frozen=True)
class Stream:
    """One table a rollup reads: its watermark's name, the table, and the fold of an id range."""

    name: str
    table: str
    fold: Callable[[int, int], None]


def tail_update(
    *, streams: list[Stream], watermark_model: type[Watermark], timeout: float = DRAIN_TIMEOUT
) -> dict[str, int | None]:
    """One run of a rollup's job: `tail_run` of each stream, by name."""
    return {
        stream.name: tail_run(
            table=stream.table,
            watermark_model=watermark_model,
            name=stream.name,
            fold=stream.fold,
            timeout=timeout,
        )
        for stream in streams
    }


def tail_rebuild(
    *,
    streams: list[Stream],
    watermark_model: type[Watermark],
    clear: Callable[[], object],
    chunk: int = CHUNK,
) -> None:
    """Rebuild a rollup from id 0, in one transaction (readers see the old rows until it
    commits; a running job waits on the watermarks): `clear()` deletes the rollup's rows,
    then every stream is folded again up to what is final now (or what the job had already
    passed, if further). Waits for the writers it sees, however long they take."""
    seen = {s.name: tail_observe(table=s.table) for s in streams}
    for stream in streams:
        while not tail_drain(table=stream.table, writers=seen[stream.name].writers):
            pass
    with transaction.atomic():
        marks = {
            s.name: tail_watermark_lock(watermark_model=watermark_model, name=s.name)
            for s in streams
        }
        clear()
        for stream in streams:
            mark, upto = marks[stream.name], seen[stream.name]
            done = max(upto.max_id, mark.done_id)
            for lo in range(0, done, chunk):
                stream.fold(lo, min(done, lo + chunk))
            mark.done_id = done
            if done == upto.max_id and (mark.as_of is None or mark.as_of < upto.at):
                mark.as_of = upto.at
            mark.save(update_fields=["done_id", "as_of", "updated_at"])
