from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models import F


def mark_started_contracts(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Contracts already activated after their start had their overdraft applied then; without
    # the mark the start sweep would apply it again, over any change made since.
    Contract = apps.get_model("billing", "Contract")
    Contract.objects.filter(activated_at__isnull=False, start_at__lte=F("activated_at")).update(
        terms_applied_at=F("activated_at")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="contract",
            name="terms_applied_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(mark_started_contracts, migrations.RunPython.noop),
    ]
