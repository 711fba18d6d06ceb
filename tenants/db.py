"""Bulk inserts for the hot paths (ledger entries, usage events) that skip per-value work.

Django 5.2's `bulk_create` already sends PostgreSQL one array per column (INSERT ... SELECT
FROM UNNEST), but it still prepares every value in Python, one call chain per value: a batch
of 1,000 usage events is ~50,000 values and most of the batch's time. The models written here
hold only values psycopg adapts natively (int, str, bool, Decimal, aware datetime, None, and
JSON wrapped once), so `bulk_insert` hands psycopg the columns as they are and lets it adapt
each array in C.
"""

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connections, router
from django.db.models import Field, ForeignKey, JSONField, Model
from psycopg.types.json import Jsonb

M = TypeVar("M", bound=Model)


def bulk_insert(objs: Sequence[M]) -> Sequence[M]:
    """Insert new instances of one model (auto primary key) in one statement; sets their pks."""
    if not objs:
        return objs
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    pk = meta.pk
    if pk is None:
        raise TypeError(f"{model.__name__} has no primary key.")
    fields = [f for f in meta.concrete_fields if f is not pk]
    if any(not _plain(field, connection.data_types) for field in fields):
        return model._default_manager.bulk_create(objs)
    columns = []
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values = [field.pre_save(obj, add=True) for obj in objs]
        else:
            values = [getattr(obj, field.attname) for obj in objs]
        if isinstance(field, JSONField):
            values = [None if v is None else Jsonb(v) for v in values]
        columns.append(values)
    quote = connection.ops.quote_name
    # Casts without length or precision (`numeric[]`, `varchar[]`): the target columns apply
    # their own, exactly as an INSERT of single values would.
    arrays = ", ".join(f"%s::{str(field.db_type(connection)).split('(')[0]}[]" for field in fields)
    names = ", ".join(quote(str(f.column)) for f in fields)
    # Only identifiers from the model's own metadata are formatted in; values are parameters.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({names}) "  # noqa: S608
        f"SELECT * FROM UNNEST({arrays}) RETURNING {quote(str(pk.column))}"
    )
    with connection.cursor() as cursor:
        # RETURNING yields rows in UNNEST order, which Django's own UNNEST insert relies on too.
        cursor.execute(sql, columns)
        ids = [row[0] for row in cursor.fetchall()]
    for obj, new_id in zip(objs, ids, strict=True):
        obj.pk = new_id
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs


def _plain(field: "Field[Any, Any]", data_types: dict[str, str]) -> bool:
    """A stored column of a built-in type, whose values psycopg adapts as they are."""
    target = field.target_field if isinstance(field, ForeignKey) else field
    return not getattr(field, "generated", False) and target.get_internal_type() in data_types
