from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.exceptions import TenantNotFound
from tenants.selectors import tenant_get
from tenants.services import api_key_create


class Command(BaseCommand):
    help = "Issue a new API key for a tenant and print it (it is shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--name", default="cli")
        parser.add_argument(
            "--scopes",
            default="read,write",
            help="comma-separated: read, write, billing (default read,write)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = tenant_get(slug=options["tenant"])
        except TenantNotFound as exc:
            raise CommandError(exc.message) from None
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            issued = api_key_create(tenant=tenant, name=options["name"], scopes=scopes)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(issued.plaintext)
