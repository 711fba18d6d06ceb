from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.models import Subscription, SubscriptionInvoice
from billing.selectors import plan_get
from billing.services.subscriptions import subscription_create, subscription_items
from tenants.exceptions import CreditlineError
from tenants.services import api_key_create, tenant_create


class Command(BaseCommand):
    help = (
        "Create a tenant (optionally subscribed to a plan through the payment gateway, as the "
        "API's subscribe does) and print its slug and a new API key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", default=None)
        parser.add_argument("--plan", default=None, help="a plan's slug, e.g. pro")

    def handle(self, *args: Any, **options: Any) -> None:
        plan = None
        try:
            if options["plan"]:
                plan = plan_get(slug=options["plan"])
                # Checked before the tenant is made: a new tenant bills in the vendor's default
                # currency (billing_currency_get), so the plan must have a price in it.
                currency = str(settings.BILLING_DEFAULT_CURRENCY).upper()
                subscription_items(plan=plan, seats=1, currency=currency)
        except CreditlineError as exc:
            raise CommandError(exc.message) from None
        tenant = tenant_create(name=options["name"], slug=options["slug"])
        issued = api_key_create(tenant=tenant, name="default")
        lines = [f"tenant: {tenant.slug}", f"api key: {issued.plaintext}"]
        if plan is not None:
            try:
                sub = subscription_create(tenant=tenant, plan=plan)
            except CreditlineError as exc:
                self.stdout.write("\n".join(lines))
                raise CommandError(f"Not subscribed: {exc.message}") from None
            lines.insert(1, f"plan: {plan.slug} ({_standing(sub)})")
        self.stdout.write("\n".join(lines))


def _standing(sub: Subscription) -> str:
    """`750 credits` once the first invoice is paid, else where to pay it."""
    if sub.status == Subscription.Status.ACTIVE:
        return f"{sub.allowance.normalize():f} credits"
    invoice = SubscriptionInvoice.objects.filter(subscription=sub).order_by("pk").first()
    where = f" at {invoice.hosted_url}" if invoice is not None and invoice.hosted_url else ""
    return f"{sub.status}: the first invoice is unpaid; pay it{where}"
