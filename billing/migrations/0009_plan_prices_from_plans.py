"""Existing data (issue 11): every plan gets a PlanPrice in its own currency at its list price
(its Stripe Price ids are recorded by the vendor, README "Stripe set-up for subscriptions"), and
every existing subscription bills in its plan's currency. Subscriptions made before stay
unlinked (no gateway) and renew as before until `subscriptions_link` links them. Unapplied,
the prices go with the table; nothing else needs undoing."""

from django.db import migrations


def prices_from_plans(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    PlanPrice = apps.get_model("billing", "PlanPrice")
    Subscription = apps.get_model("billing", "Subscription")
    for plan in Plan.objects.all():
        PlanPrice.objects.get_or_create(
            plan=plan, currency=plan.currency, defaults={"base_minor": plan.price_minor}
        )
        Subscription.objects.filter(plan=plan, gateway="").update(currency=plan.currency)


class Migration(migrations.Migration):
    dependencies = [("billing", "0008_subscriptions_collect")]

    operations = [migrations.RunPython(prices_from_plans, migrations.RunPython.noop)]
