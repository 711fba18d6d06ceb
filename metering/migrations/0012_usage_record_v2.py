"""metering_usage_record as one statement with generic plans, and metering_usage_prior, the read
of the events recorded with a request's keys (metering/sql/record_v2.sql). A change is a new
file and a new migration."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent.parent / "sql"
DROP_PRIOR = "DROP FUNCTION IF EXISTS metering_usage_prior(bigint, varchar[]);"


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0011_usage_record_function"),
        ("ledger", "0012_buckets_hot_updates"),
    ]

    operations = [
        migrations.RunSQL(
            (SQL / "record_v2.sql").read_text(),
            DROP_PRIOR + (SQL / "record_v1.sql").read_text(),
        ),
    ]
