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


@pytest.mark.django_db
def test_a_plan_without_its_stripe_prices_fails_the_deploy_check(settings: Any) -> None:
    from billing.models import Plan, PlanPrice

    settings.BILLING_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_live_x"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_x"
    pro = Plan.objects.create(slug="pro", name="Pro", price_minor=7_900, included_credits=750)
    team = Plan.objects.create(
        slug="team", name="Team", price_minor=2_000, included_credits=100, credits_per_seat=50
    )
    Plan.objects.create(slug="free", name="Free", price_minor=0, included_credits=10)
    PlanPrice.objects.create(plan=pro, currency="USD", base_minor=7_900)
    team_usd = PlanPrice.objects.create(
        plan=team,
        currency="USD",
        base_minor=2_000,
        per_seat_minor=1_000,
        stripe_base_price_id="price_team",
    )

    def errors() -> list[str]:
        found = run_checks(include_deployment_checks=True, databases=["default"])
        return [m.msg for m in found if m.id == "billing.E003"]

    assert errors() == [
        "Plan free has no Stripe Price for any currency: it cannot be subscribed to.",
        "Plan pro has no Stripe Price for USD: it cannot be subscribed to.",
        "Plan team has no Stripe Price for USD per seat: it cannot be subscribed to.",
    ]
    assert [m for m in run_checks(include_deployment_checks=True) if m.id == "billing.E003"] == []

    Plan.objects.filter(slug="free").update(active=False)
    PlanPrice.objects.filter(plan=pro).update(stripe_base_price_id="price_pro")
    team_usd.stripe_seat_price_id = "price_team_seat"
    team_usd.save()
    assert errors() == []
