"""System checks: production must not take money through the fake gateway (it credits without
a payment), and the Stripe gateway needs its keys."""

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
