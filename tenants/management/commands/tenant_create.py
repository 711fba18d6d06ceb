from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tenants.services import api_key_create, tenant_create


class Command(BaseCommand):
    help = "Create a tenant and print its slug and a new API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_create(name=options["name"], slug=options["slug"])
        issued = api_key_create(tenant=tenant, name="default")
        self.stdout.write(f"tenant: {tenant.slug}\napi key: {issued.plaintext}")
