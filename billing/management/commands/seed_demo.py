"""A demo to look at: an admin user, a demo tenant and a fresh API key. Safe to run again."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from ratecards.services import ratecard_seed_example
from tenants.models import ApiKey, Membership, Tenant
from tenants.services import api_key_create, api_key_revoke, membership_add, tenant_create

DEMO_KEY_NAME = "seed_demo"


class Command(BaseCommand):
    help = "Install demo data and print the URLs, the admin login and a new API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="creditline")

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            user = self._admin(options["username"], options["password"])
            ratecard_seed_example()  # the default card `standard` and cost catalog v1
            tenant = Tenant.objects.filter(slug="demo").first() or tenant_create(
                name="Demo Tenant", slug="demo"
            )
            membership_add(tenant=tenant, user=user, role=Membership.Role.OWNER)
            # Only a key's hash is kept, so each run issues a new key and retires the last one.
            for old in ApiKey.objects.filter(
                tenant=tenant, name=DEMO_KEY_NAME, revoked_at__isnull=True
            ):
                api_key_revoke(api_key=old)
            issued = api_key_create(tenant=tenant, name=DEMO_KEY_NAME)

        base = settings.CREDITLINE_PUBLIC_URL.rstrip("/")
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Creditline demo is ready.",
                    f"  portal    {base}/",
                    f"  admin     {base}/admin/",
                    f"  API docs  {base}/api/docs/",
                    f"  login     {options['username']} / {options['password']}",
                    f"  tenant    {tenant.slug}",
                    f"  API key   {issued.plaintext}",
                    f"  try       curl -H 'Authorization: Bearer {issued.plaintext}' "
                    f"{base}/api/v1/tenant",
                    "",
                ]
            )
        )

    def _admin(self, username: str, password: str) -> Any:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        if created or not user.check_password(password):
            user.set_password(password)
            user.is_staff = user.is_superuser = True
            user.save()
        return user
