"""The `billing` API-key scope now guards top-ups, auto top-up and webhook endpoints. Keys issued
before it could use those routes with `read` / `write`; they get `billing` here so existing
integrations keep working (README, "API changes"). New keys get it only when asked for."""

import secrets

from django.db import migrations


def keep_billing(apps, schema_editor):
    ApiKey = apps.get_model("tenants", "ApiKey")
    ConfigStamp = apps.get_model("tenants", "ConfigStamp")
    changed = 0
    for key in ApiKey.objects.filter(revoked_at__isnull=True).exclude(scopes__contains=["billing"]):
        key.scopes = sorted({*key.scopes, "billing"})
        key.save(update_fields=["scopes"])
        changed += 1
    if changed:
        # Processes cache keys with their scopes (tenants/cache.py).
        ConfigStamp.objects.filter(pk=1).update(value=secrets.randbits(63))


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_webhookendpoint_deleted_at"),
        ("tenants", "0002_configstamp"),
    ]

    operations = [migrations.RunPython(keep_billing, migrations.RunPython.noop)]
