from decimal import Decimal

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0005_reconciliation_run"),
        ("billing", "0016_invoice_refund_reason"),
        ("ratecards", "0004_cost_price_gpu_seconds"),
    ]

    operations = [
        migrations.CreateModel(
            name="StoredTrap",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("since", models.DateTimeField()),
                ("until", models.DateTimeField()),
                ("events", models.BigIntegerField()),
                (
                    "charged",
                    models.DecimalField(decimal_places=4, default=Decimal("0"), max_digits=24),
                ),
                (
                    "under_current",
                    models.DecimalField(decimal_places=4, default=Decimal("0"), max_digits=24),
                ),
                ("unpriced", models.BigIntegerField()),
                (
                    "contract",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="billing.contract",
                    ),
                ),
                (
                    "current",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="ratecards.ratecardversion",
                    ),
                ),
                (
                    "pinned",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="ratecards.ratecardversion",
                    ),
                ),
            ],
        ),
    ]
