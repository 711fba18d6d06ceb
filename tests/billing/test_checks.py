"""Production never runs the fake gateway by accident: `check --deploy` refuses it (and a Stripe
gateway without its keys), and the fake checkout page is gone with a real gateway."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.test import Client

from billing.models import CreditPack, TopUp
from billing.services import topup_create
from ledger.selectors import balance_get
from tenants.models import Tenant


def _billing_errors() -> list[tuple[str, str]]:
    return [
        (m.id or "", m.msg)
        for m in run_checks(include_deployment_checks=True)
        if (m.id or "").startswith("billing.")
    ]


def test_fake_gateway_with_debug_off_is_an_error(settings: Any) -> None:
    settings.DEBUG = False
    settings.BILLING_GATEWAY = "fake"
    settings.BILLING_ALLOW_FAKE_GATEWAY = False

    assert _billing_errors() == [
        (
            "billing.E001",
            "BILLING_GATEWAY is 'fake' with DEBUG off: top-ups would grant credits without any "
            "payment.",
        )
    ]


def test_fake_gateway_is_allowed_with_debug_or_the_explicit_opt_in(settings: Any) -> None:
    settings.BILLING_GATEWAY = "fake"
    settings.DEBUG = True
    settings.BILLING_ALLOW_FAKE_GATEWAY = False
    assert _billing_errors() == []

    settings.DEBUG = False
    settings.BILLING_ALLOW_FAKE_GATEWAY = True
    assert _billing_errors() == []


def test_stripe_without_its_keys_is_an_error(settings: Any) -> None:
    settings.DEBUG = False
    settings.BILLING_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""

    assert _billing_errors() == [
        ("billing.E002", "BILLING_GATEWAY is 'stripe' but STRIPE_SECRET_KEY is empty."),
        ("billing.E002", "BILLING_GATEWAY is 'stripe' but STRIPE_WEBHOOK_SECRET is empty."),
    ]

    settings.STRIPE_SECRET_KEY = "sk_live_x"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_x"
    assert _billing_errors() == []


@pytest.mark.django_db
def test_the_fake_checkout_is_404_unless_the_gateway_is_fake(
    settings: Any, tenant: Tenant, pack: CreditPack, owner: User
) -> None:
    top_up = topup_create(tenant=tenant, pack=pack, gateway="fake")
    client = Client()
    client.force_login(owner)
    settings.BILLING_GATEWAY = "stripe"

    assert client.get(f"/billing/checkout/fake/{top_up.pk}/").status_code == 404
    assert client.post(f"/billing/checkout/fake/{top_up.pk}/").status_code == 404

    top_up.refresh_from_db()
    assert top_up.status == TopUp.Status.PENDING
    assert balance_get(tenant=tenant).available == 0
