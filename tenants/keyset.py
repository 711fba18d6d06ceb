"""Keyset (seek) pagination for the portal's tables: a page is "the next `limit` rows after
this row in this order", so reading page 1,000 costs what page 1 costs, and rows written
meanwhile never shift a page (an offset would re-read every row before it).

The cursor is a row's id. The selector re-reads that row's sort key (one query, scoped to the
tenant: another tenant's id is no cursor at all) and asks for the rows after it. The filter
carries a redundant bound on the first key (`created_at <= x` beside `created_at < x OR
(created_at = x AND id < y)`), so PostgreSQL starts the index scan at the cursor instead of
filtering its way there from the first row.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db.models import F, Model, Q, QuerySet
from django.db.models.expressions import OrderBy

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Key:
    """One column of a sort order. `nullable` columns sort ascending, NULLs last (PostgreSQL's
    default for ASC, as the bucket indexes have them)."""

    field: str
    descending: bool = False
    nullable: bool = False

    def order_by(self) -> OrderBy:
        expression = F(self.field)
        if self.descending:
            return expression.desc()
        return expression.asc(nulls_last=True) if self.nullable else expression.asc()


@dataclass(frozen=True)
class Page(Generic[M]):
    rows: list[M]
    # The id to pass as `after` for the next page; None on the last page.
    next_after: int | None
    # Whether this page is not the first (the template offers "back to the first page").
    has_previous: bool


def _after(key: Key, value: Any) -> tuple[Q, Q]:
    """(rows strictly after `value` on this column, rows equal to it)."""
    if key.nullable:
        if key.descending:
            raise ValueError("nullable keys sort ascending, NULLs last")
        if value is None:
            return Q(pk__in=[]), Q(**{f"{key.field}__isnull": True})
        return (
            Q(**{f"{key.field}__gt": value}) | Q(**{f"{key.field}__isnull": True}),
            Q(**{key.field: value}),
        )
    lookup = "lt" if key.descending else "gt"
    return Q(**{f"{key.field}__{lookup}": value}), Q(**{key.field: value})


def seek(qs: QuerySet[M], *, keys: Sequence[Key], cursor: Model) -> QuerySet[M]:
    """`qs` past `cursor` in the order `keys` (whose last key must be unique, e.g. id)."""
    if not keys:
        raise ValueError("a keyset needs at least one key")
    values = [getattr(cursor, key.field) for key in keys]
    *outer, last = zip(keys, values, strict=True)
    condition = _after(*last)[0]
    for key, value in reversed(outer):
        greater, equal = _after(key, value)
        condition = greater | (equal & condition)
    first, first_value = keys[0], values[0]
    if first_value is not None:  # the bound the index scan starts from
        bound = "lte" if first.descending else "gte"
        start = Q(**{f"{first.field}__{bound}": first_value})
        # NULLs sort last: they are still ahead of any value.
        qs = qs.filter(start | Q(**{f"{first.field}__isnull": True}) if first.nullable else start)
    return qs.filter(condition)


def page_of(qs: QuerySet[M], *, keys: Sequence[Key], after: int | None, limit: int) -> Page[M]:
    """One page of `qs` in the order `keys`, after the row whose id is `after` (an id that is
    not in `qs` — another tenant's, a deleted one, garbage — starts from the first page)."""
    ordered = qs.order_by(*(key.order_by() for key in keys))
    cursor = ordered.filter(pk=after).first() if after is not None else None
    if cursor is not None:
        ordered = seek(ordered, keys=keys, cursor=cursor)
    rows = list(ordered[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        rows=rows,
        next_after=rows[-1].pk if more and rows else None,
        has_previous=cursor is not None,
    )
