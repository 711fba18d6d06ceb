"""System checks: production must not take money through the fake gateway (it credits without
a payment), the Stripe gateway needs its keys, and every plan on sale its Stripe Prices
(`check --deploy --database default`: the plans are read from the database)."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register


@register(Tags.security, deploy=True)
def gateway_check(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    gateway = getattr(settings, "BILLING_GATEWAY", "fake")
    errors: list[CheckMessage] = []
    if (
        gateway == "fake"
        and not settings.DEBUG
        and not getattr(settings, "BILLING_ALLOW_FAKE_GATEWAY", False)
    ):
        errors.append(
            Error(
                "BILLING_GATEWAY is 'fake' with DEBUG off: top-ups would grant credits without "
                "any payment.",
                hint="Set BILLING_GATEWAY=stripe, or BILLING_ALLOW_FAKE_GATEWAY=true for a demo.",
                id="billing.E001",
            )
        )
    if gateway == "stripe":
        for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
            if not getattr(settings, name, ""):
                errors.append(
                    Error(
                        f"BILLING_GATEWAY is 'stripe' but {name} is empty.",
                        hint=f"Set the {name} environment variable.",
                        id="billing.E002",
                    )
                )
    return errors


@register(Tags.database, deploy=True)
def plan_prices_check(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    if not databases or getattr(settings, "BILLING_GATEWAY", "fake") != "stripe":
        return []
    from billing.models import Plan

    errors: list[CheckMessage] = []
    for plan in Plan.objects.filter(active=True).prefetch_related("prices").order_by("slug"):
        prices = list(plan.prices.all())
        missing = [p.currency for p in prices if not p.stripe_base_price_id]
        missing += [
            f"{p.currency} per seat"
            for p in prices
            if (p.per_seat_minor > 0 or plan.credits_per_seat > 0) and not p.stripe_seat_price_id
        ]
        if not prices or missing:
            errors.append(
                Error(
                    f"Plan {plan.slug} has no Stripe Price for "
                    f"{', '.join(missing) if missing else 'any currency'}: it cannot be "
                    "subscribed to.",
                    hint="Record its Stripe Price ids on the plan's prices in the admin "
                    "(README, 'Stripe set-up for subscriptions').",
                    id="billing.E003",
                )
            )
    return errors
