"""PostgreSQL refuses changes to published versions, whatever the client (ORM, raw SQL, psql).

- A published version row: no UPDATE, no DELETE. The draft→published UPDATE is allowed
  because the trigger looks at OLD.status.
- A rate / multiplier / cost price whose version (old or new) is published: no INSERT, UPDATE
  or DELETE. The parent row is read FOR SHARE so a concurrent publish waits for this write (and
  a write racing a publish sees the committed status), closing the draft-edit/publish race.

Every database is PostgreSQL (the embedded default too), so every database gets these
triggers; the vendor check below is only a guard. The ORM guard in models.py applies as well.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

VERSION_TABLES = ("ratecards_ratecardversion", "ratecards_costcatalogversion")
CHILD_TABLES = (
    ("ratecards_rate", "ratecards_ratecardversion"),
    ("ratecards_modelclassmultiplier", "ratecards_ratecardversion"),
    ("ratecards_costprice", "ratecards_costcatalogversion"),
)

FUNCTIONS = """
CREATE OR REPLACE FUNCTION ratecards_refuse_published_version() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'published' THEN
        RAISE EXCEPTION '% row % is published and immutable', TG_TABLE_NAME, OLD.id;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION ratecards_refuse_published_child() RETURNS trigger AS $$
DECLARE
    parent_status text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('SELECT status FROM %I WHERE id = $1 FOR SHARE', TG_ARGV[0])
            INTO parent_status USING OLD.version_id;
        IF parent_status = 'published' THEN
            RAISE EXCEPTION '% row % belongs to a published version', TG_TABLE_NAME, OLD.id;
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('SELECT status FROM %I WHERE id = $1 FOR SHARE', TG_ARGV[0])
            INTO parent_status USING NEW.version_id;
        IF parent_status = 'published' THEN
            RAISE EXCEPTION '% row may not be added to published version %',
                TG_TABLE_NAME, NEW.version_id;
        END IF;
        RETURN NEW;
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;
"""


def _create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTIONS, params=None)
    for table in VERSION_TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ratecards_refuse_published_version()"
        )
    for table, parent in CHILD_TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_immutable BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION ratecards_refuse_published_child('{parent}')"
        )


def _drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in (*VERSION_TABLES, *(child for child, _ in CHILD_TABLES)):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS ratecards_refuse_published_version()")
    schema_editor.execute("DROP FUNCTION IF EXISTS ratecards_refuse_published_child()")


class Migration(migrations.Migration):
    dependencies = [
        ("ratecards", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(_create, _drop, elidable=False),
    ]
