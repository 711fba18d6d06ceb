"""A debit's update of a bucket becomes a HOT update, and the debit plans once per connection.

The two partial indexes on buckets were conditioned on `remaining > 0`, so every debit's update
of `remaining` wrote a new entry into all four of the bucket's indexes and left the old ones
dead: a busy tenant's bucket had tens of thousands of dead index entries between vacuums, and
every debit's index scans walked them. They are conditioned now on `unspent`, a column that
PostgreSQL keeps equal to `remaining > 0` (adding it rewrites the bucket table once). Buckets
and accounts, updated by every debit, leave a tenth of each page free for the new row versions
(fillfactor 90; for pages written from now on). The debit becomes ledger/sql/debit_v4.sql
(generic plans, fewer statements) and the sweep's step ledger/sql/expire_v2.sql (due buckets
found by `unspent`)."""

from pathlib import Path

from django.db import migrations, models

SQL = Path(__file__).resolve().parent.parent / "sql"
FILLFACTOR = """
ALTER TABLE ledger_creditbucket SET (fillfactor = 90);
ALTER TABLE ledger_creditaccount SET (fillfactor = 90);
"""
FILLFACTOR_RESET = """
ALTER TABLE ledger_creditbucket RESET (fillfactor);
ALTER TABLE ledger_creditaccount RESET (fillfactor);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0011_staff_credit_permissions"),
        ("tenants", "0006_invitation"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="creditbucket", name="bucket_due_idx"),
        migrations.RemoveIndex(model_name="creditbucket", name="bucket_tenant_spendable_idx"),
        migrations.AddField(
            model_name="creditbucket",
            name="unspent",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.ExpressionWrapper(
                    models.Q(("remaining__gt", 0)), models.BooleanField()
                ),
                output_field=models.BooleanField(),
            ),
        ),
        migrations.AddIndex(
            model_name="creditbucket",
            index=models.Index(
                condition=models.Q(("unspent", True)),
                fields=["tenant", "expires_at", "cost_basis_minor", "granted_at", "id"],
                name="bucket_tenant_spendable_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="creditbucket",
            index=models.Index(
                condition=models.Q(("unspent", True)),
                fields=["expires_at"],
                name="bucket_due_idx",
            ),
        ),
        migrations.RunSQL(FILLFACTOR, FILLFACTOR_RESET),
        migrations.RunSQL(
            (SQL / "debit_v4.sql").read_text() + (SQL / "expire_v2.sql").read_text(),
            (SQL / "debit_v3.sql").read_text() + (SQL / "expire_v1.sql").read_text(),
        ),
    ]
