from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.exceptions import PlanNotFound
from billing.selectors import plan_get
from billing.services import subscription_start
from tenants.services import api_key_create, tenant_create


class Command(BaseCommand):
    help = "Create a tenant (optionally subscribed to a plan) and print its slug and a new API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", default=None)
        parser.add_argument("--plan", default=None, help="a plan's slug, e.g. pro")

    def handle(self, *args: Any, **options: Any) -> None:
        plan = None
        if options["plan"]:
            try:
                plan = plan_get(slug=options["plan"])
            except PlanNotFound as exc:
                raise CommandError(exc.message) from None
        tenant = tenant_create(name=options["name"], slug=options["slug"])
        if plan is not None:
            subscription_start(tenant=tenant, plan=plan)
        issued = api_key_create(tenant=tenant, name="default")
        lines = [f"tenant: {tenant.slug}", f"api key: {issued.plaintext}"]
        if plan is not None:
            lines.insert(1, f"plan: {plan.slug} ({plan.included_credits.normalize():f} credits)")
        self.stdout.write("\n".join(lines))
