"""Packs get a price per currency (CreditPackPrice, as plans have PlanPrice): every existing
pack gets one in its own currency at its list price, so every tenant is offered what it was
offered before. Unapplied, the prices go with the table."""

import django.db.models.deletion
from django.db import migrations, models


def prices_from_packs(apps, schema_editor):
    CreditPack = apps.get_model("billing", "CreditPack")
    CreditPackPrice = apps.get_model("billing", "CreditPackPrice")
    for pack in CreditPack.objects.all():
        CreditPackPrice.objects.get_or_create(
            pack=pack, currency=pack.currency, defaults={"price_minor": pack.price_minor}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0012_topup_refunds"),
    ]

    operations = [
        migrations.CreateModel(
            name="CreditPackPrice",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("currency", models.CharField(max_length=3)),
                ("price_minor", models.BigIntegerField()),
                (
                    "pack",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="prices",
                        to="billing.creditpack",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("pack", "currency"), name="packprice_pack_currency"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("price_minor__gt", 0)), name="packprice_price_gt_0"
                    ),
                ],
            },
        ),
        migrations.RunPython(prices_from_packs, migrations.RunPython.noop),
    ]
