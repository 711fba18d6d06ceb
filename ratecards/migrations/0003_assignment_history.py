"""RateCardAssignment keeps its history: one row per (tenant, valid_from) instead of one row
per tenant. Existing rows become the first entry of their tenant's history, valid from the
moment they were created."""

from typing import Any

from django.db import migrations, models
from django.db.models import F


def _valid_from_created_at(apps: Any, schema_editor: Any) -> None:
    assignment = apps.get_model("ratecards", "RateCardAssignment")
    assignment.objects.update(valid_from=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("ratecards", "0002_immutability_triggers"),
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="ratecardassignment",
            name="valid_from",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(_valid_from_created_at, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="ratecardassignment",
            name="valid_from",
            field=models.DateTimeField(),
        ),
        migrations.RemoveConstraint(
            model_name="ratecardassignment",
            name="ratecardassignment_one_per_tenant",
        ),
        migrations.AddConstraint(
            model_name="ratecardassignment",
            constraint=models.UniqueConstraint(
                fields=("tenant", "valid_from"), name="ratecardassignment_tenant_valid_from"
            ),
        ),
    ]
