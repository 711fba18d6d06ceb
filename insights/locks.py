"""The console's locks (STYLE.md: an app's locks in one place)."""

from django.db import connection

from insights.models import StoredTrap


def stored_traps_lock() -> None:
    """Inside a transaction: the stored traps' table for the job that replaces them, until
    commit. A second copy of the job waits, then replaces them whole in turn; readers of the
    table are not blocked (EXCLUSIVE mode lets SELECT through)."""
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {StoredTrap._meta.db_table} IN EXCLUSIVE MODE")
