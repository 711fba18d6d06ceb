"""A demo to look at: plans, packs, the example rate card, an admin user, a demo tenant on the
Pro plan (so it has a balance) and a fresh API key. Safe to run again."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from billing.models import CreditPack, Plan
from billing.services import subscription_start
from ratecards.services import ratecard_seed_example
from tenants.models import ApiKey, Membership, Tenant
from tenants.services import api_key_create, api_key_revoke, membership_add, tenant_create

DEMO_KEY_NAME = "seed_demo"

# (slug, name, monthly price in cents, included credits)
PLANS = [
    ("starter", "Starter", 2_900, "250"),
    ("pro", "Pro", 7_900, "750"),
    ("enterprise", "Enterprise", 49_900, "5000"),
]
# (slug, name, credits, price in cents)
PACKS = [
    ("pack-100", "100 credits", "100", 1_500),
    ("pack-500", "500 credits", "500", 6_500),
    ("pack-2000", "2,000 credits", "2000", 22_000),
]


class Command(BaseCommand):
    help = "Install demo data and print the URLs, the admin login and a new API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="creditline")

    def handle(self, *args: Any, **options: Any) -> None:
        card = ratecard_seed_example()
        with transaction.atomic():
            for slug, name, price_minor, credits in PLANS:
                Plan.objects.update_or_create(
                    slug=slug,
                    defaults={
                        "name": name,
                        "price_minor": price_minor,
                        "included_credits": credits,
                        "rate_card": card,
                    },
                )
            for slug, name, credits, price_minor in PACKS:
                CreditPack.objects.update_or_create(
                    slug=slug,
                    defaults={"name": name, "credits": credits, "price_minor": price_minor},
                )
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
        # Its own durable transaction (it grants credits); a second run keeps the subscription.
        subscription_start(tenant=tenant, plan=Plan.objects.get(slug="pro"))

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
                    f"  tenant    {tenant.slug} (Pro plan, 750 credits a month)",
                    f"  billing   {base}/billing/",
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
