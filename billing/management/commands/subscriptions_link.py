from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.exceptions import GatewayError
from billing.models import LIVE_SUBSCRIPTION, Subscription
from billing.services.subscriptions import subscription_link


class Command(BaseCommand):
    help = (
        "Link subscriptions made before billing collected fees to their gateway subscriptions "
        "(README, 'Subscriptions'). Without --tenant: list the unlinked ones."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="the tenant's slug")
        parser.add_argument(
            "--reference", help="the gateway's subscription id (Stripe: sub_...) made for it"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        unlinked = Subscription.objects.filter(status__in=LIVE_SUBSCRIPTION, gateway="")
        if not options["tenant"]:
            for sub in unlinked.select_related("tenant", "plan").order_by("tenant__slug"):
                self.stdout.write(
                    f"{sub.tenant.slug}\t{sub.plan.slug}\tperiod ends "
                    f"{sub.current_period_end:%Y-%m-%d %H:%M}"
                )
            return
        if not options["reference"]:
            raise CommandError("--reference names the gateway subscription to link.")
        found = unlinked.filter(tenant__slug=options["tenant"]).first()
        if found is None:
            raise CommandError(f"Tenant {options['tenant']} has no unlinked subscription.")
        try:
            linked = subscription_link(subscription=found, gateway_reference=options["reference"])
        except GatewayError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"linked: {options['tenant']} -> {linked.gateway} {linked.gateway_reference} "
            f"({linked.status})"
        )
