import secrets

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def create_the_row(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    ConfigStamp = apps.get_model("tenants", "ConfigStamp")
    ConfigStamp.objects.create(id=1, value=secrets.randbits(63))


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ConfigStamp",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("value", models.BigIntegerField()),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("id", 1)), name="configstamp_one_row"
                    )
                ],
            },
        ),
        migrations.RunPython(create_the_row, migrations.RunPython.noop),
    ]
