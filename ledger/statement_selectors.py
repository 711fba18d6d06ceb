"""Reads behind the customer's statement and bucket list, a page at a time (the portal).

Each page is a fixed number of indexed queries whatever the size of the ledger: the cursor's
row, then the page itself off `entry_tenant_created_idx` (tenants/keyset.py). "Balance after"
is stored on every entry (LedgerEntry.balance_after, written with the entry in the same
transaction), so no window function or running sum is needed to show it.
"""

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Q

from ledger.models import CreditBucket, LedgerEntry
from ledger.selectors import bucket_list, entry_list
from tenants.keyset import Key, Page, page_of
from tenants.models import Tenant

STATEMENT_ORDER = (Key("created_at", descending=True), Key("id", descending=True))
# Live buckets in the order the next debit draws them (money invariant 5), the rest newest first.
LIVE_BUCKET_ORDER = (
    Key("expires_at", nullable=True),
    Key("cost_basis_minor"),
    Key("granted_at"),
    Key("id"),
)
ALL_BUCKET_ORDER = (Key("granted_at", descending=True), Key("id", descending=True))
# How many entries one CSV export may hold: a request must end well inside the web server's
# 30 s timeout. Measured (bench/README.md, the portal's pages): 1,200 entries a second on a
# loaded machine, so 20,000 take ~17 s there and a few seconds on a quiet one; a longer range
# is refused with the advice to narrow it.
STATEMENT_EXPORT_MAX = 20_000
EXPORT_CHUNK = 2_000


def statement_page(
    *,
    tenant: Tenant,
    kinds: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Page[LedgerEntry]:
    """One page of the statement, newest first, after the entry `after`: two queries."""
    qs = entry_list(tenant=tenant, kinds=kinds, since=since, until=until)
    return page_of(qs, keys=STATEMENT_ORDER, after=after, limit=limit)


def statement_export_too_long(
    *,
    tenant: Tenant,
    kinds: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> bool:
    """Whether the range holds more than STATEMENT_EXPORT_MAX entries (reads at most that
    many index entries, never counts the whole ledger)."""
    qs = entry_list(tenant=tenant, kinds=kinds, since=since, until=until)
    return qs.order_by().values("id")[STATEMENT_EXPORT_MAX : STATEMENT_EXPORT_MAX + 1].exists()


def statement_export_rows(
    *,
    tenant: Tenant,
    kinds: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[LedgerEntry]:
    """Every entry in the range, oldest first, read EXPORT_CHUNK at a time by keyset (each
    chunk one query; no server-side cursor held open across a streamed response)."""
    qs = entry_list(tenant=tenant, kinds=kinds, since=since, until=until).order_by(
        "created_at", "id"
    )
    last: LedgerEntry | None = None
    while True:
        chunk = qs
        if last is not None:
            chunk = qs.filter(created_at__gte=last.created_at).filter(
                Q(created_at__gt=last.created_at) | Q(created_at=last.created_at, id__gt=last.pk)
            )
        rows = list(chunk[:EXPORT_CHUNK])
        yield from rows
        if len(rows) < EXPORT_CHUNK:
            return
        last = rows[-1]


def bucket_page(
    *, tenant: Tenant, show_all: bool, after: int | None = None, limit: int = 50
) -> Page[CreditBucket]:
    """Live buckets in consumption order, or every bucket (live, spent, expired) newest grant
    first. The overdraft's bucket is the contract's loan, not credits: never listed."""
    qs = bucket_list(tenant=tenant, include_spent=show_all)
    keys = ALL_BUCKET_ORDER if show_all else LIVE_BUCKET_ORDER
    return page_of(qs, keys=keys, after=after, limit=limit)
