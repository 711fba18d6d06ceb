"""A demo to look at: plans, packs, the example rate card, an admin user, a demo tenant
subscribed to the Pro plan through the payment gateway (so it has a balance) and a fresh API
key. Safe to run again.

The admin's password is random, printed once when the user is made, and kept by later runs
(only its hash is stored, so it cannot be printed again): `--reset-admin-password` makes and
prints a new one. An admin still on the old fixed demo password gets a random one too
(production refuses that password: tenants.logins).
"""

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from billing import links
from billing.models import CreditPack, Plan, PlanPrice
from billing.selectors import subscription_get_active
from billing.services.subscriptions import subscription_create
from ratecards.services import ratecard_seed_example
from tenants.logins import OLD_DEMO_PASSWORD
from tenants.models import ApiKey, Membership, Tenant
from tenants.services import api_key_create, api_key_revoke, membership_add, tenant_create

DEMO_KEY_NAME = "seed_demo"
DEMO_KEY_SCOPES = ("read", "write", "billing")

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
        parser.add_argument(
            "--reset-admin-password",
            action="store_true",
            help="give the admin a new random password and print it (otherwise it is kept)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        card = ratecard_seed_example()
        with transaction.atomic():
            for slug, name, price_minor, credits in PLANS:
                plan, _ = Plan.objects.update_or_create(
                    slug=slug,
                    defaults={
                        "name": name,
                        "price_minor": price_minor,
                        "included_credits": credits,
                        "rate_card": card,
                    },
                )
                # Its fee in its currency (the Stripe Price ids are the vendor's to record).
                PlanPrice.objects.update_or_create(
                    plan=plan, currency=plan.currency, defaults={"base_minor": price_minor}
                )
            for slug, name, credits, price_minor in PACKS:
                CreditPack.objects.update_or_create(
                    slug=slug,
                    defaults={"name": name, "credits": credits, "price_minor": price_minor},
                )
            user, password = self._admin(options["username"], options["reset_admin_password"])
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
            issued = api_key_create(tenant=tenant, name=DEMO_KEY_NAME, scopes=DEMO_KEY_SCOPES)
        # Through the gateway, as the API's subscribe (the fake one pays the first invoice at
        # once, and its credits come with it); a second run keeps the subscription.
        if subscription_get_active(tenant=tenant) is None:
            subscription_create(tenant=tenant, plan=Plan.objects.get(slug="pro"))

        base = settings.CREDITLINE_PUBLIC_URL.rstrip("/")
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Creditline demo is ready.",
                    f"  portal    {base}/",
                    f"  admin     {base}/admin/",
                    f"  API docs  {base}/api/docs/",
                    f"  login     {user.get_username()} / {password}"
                    if password
                    else f"  login     {user.get_username()} (the password printed when it was "
                    "made; seed_demo --reset-admin-password prints a new one)",
                    f"  tenant    {tenant.slug} (Pro plan, 750 credits a month)",
                    f"  buy       {base}{links.BUY}",
                    f"  API key   {issued.plaintext}",
                    f"  try       curl -H 'Authorization: Bearer {issued.plaintext}' "
                    f"{base}/api/v1/tenant",
                    "",
                ]
            )
        )

    def _admin(self, username: str, reset_password: bool) -> tuple[Any, str]:
        """The superuser, and its new password when one was made now ("" when kept)."""
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        password = ""
        if created or reset_password or user.check_password(OLD_DEMO_PASSWORD):
            password = secrets.token_urlsafe(12)
            user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        return user, password
