"""Money shown and parsed with Decimal and the currency's ISO 4217 exponent: JPY has no minor
unit, USD two, KWD three."""

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from billing.models import AutoTopUpPolicy, CreditPack
from billing.money import money_format, money_from_minor, money_to_minor
from billing.services import fake_checkout_confirm, topup_create
from tenants.models import Tenant
from tests.billing.factories import CreditPackFactory


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (6_500, "USD", "65.00 USD"),
        (123_456_789, "USD", "1,234,567.89 USD"),
        (5, "USD", "0.05 USD"),
        (1_000, "JPY", "1,000 JPY"),
        (7, "JPY", "7 JPY"),
        (1_500, "KWD", "1.500 KWD"),
    ],
)
def test_money_format(minor: int, currency: str, shown: str) -> None:
    assert money_format(minor, currency) == shown


def test_money_to_minor_and_back() -> None:
    assert money_to_minor(Decimal("65.00"), "USD") == 6_500
    assert money_to_minor(Decimal("65"), "USD") == 6_500
    assert money_to_minor(Decimal("5000"), "JPY") == 5_000
    assert money_to_minor(Decimal("1.5"), "KWD") == 1_500
    assert money_from_minor(5_000, "JPY") == Decimal("5000")
    assert money_from_minor(6_550, "USD") == Decimal("65.50")
    with pytest.raises(ValueError, match="JPY amounts have 0 decimal place"):
        money_to_minor(Decimal("0.5"), "JPY")
    with pytest.raises(ValueError, match="USD amounts have 2 decimal place"):
        money_to_minor(Decimal("0.001"), "USD")


@pytest.fixture
def yen_pack(db: None) -> CreditPack:
    made: CreditPack = CreditPackFactory.create(
        slug="pack-yen", name="Yen pack", credits=Decimal("100"), price_minor=1_000, currency="JPY"
    )
    return made


@pytest.mark.django_db(transaction=True)
def test_a_yen_top_up_is_announced_in_yen(
    tenant: Tenant, yen_pack: CreditPack, owner: User, settings: Any
) -> None:
    settings.BILLING_DEFAULT_CURRENCY = "JPY"  # a tenant buys in its billing currency only
    top_up = topup_create(tenant=tenant, pack=yen_pack)

    fake_checkout_confirm(top_up=top_up)

    (message,) = mail.outbox
    assert message.body == (
        "Your payment of 1,000 JPY went through and 100 credits were added to your balance."
    )


@pytest.mark.django_db
def test_the_auto_top_up_cap_is_read_in_the_packs_currency(
    tenant: Tenant, yen_pack: CreditPack, pack: CreditPack, owner: User, settings: Any
) -> None:
    client = Client()
    client.force_login(owner)
    # A tenant buys in its billing currency only: yen first, then (re-billed) dollars.
    settings.BILLING_DEFAULT_CURRENCY = "JPY"
    form = {"enabled": "", "threshold": "50", "pack": yen_pack.slug, "monthly_cap": "5000"}

    assert client.post("/auto-top-up/", form).status_code == 302
    assert AutoTopUpPolicy.objects.get().monthly_cap_minor == 5_000
    page = client.get("/auto-top-up/")
    assert page.context["form"].initial["monthly_cap"] == Decimal("5000")

    settings.BILLING_DEFAULT_CURRENCY = "USD"
    usd = {**form, "pack": pack.slug, "monthly_cap": "130.50"}
    assert client.post("/auto-top-up/", usd).status_code == 302
    assert AutoTopUpPolicy.objects.get().monthly_cap_minor == 13_050
    settings.BILLING_DEFAULT_CURRENCY = "JPY"

    half_yen = {**form, "monthly_cap": "0.5"}
    refused = client.post("/auto-top-up/", half_yen)
    assert refused.status_code == 422
    assert refused.context["form"].errors == {
        "monthly_cap": ["JPY amounts have 0 decimal place(s) at most."]
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("typed", "shown"), [("40", 'value="40"'), ("12.5", 'value="12.5"')])
def test_the_auto_top_up_threshold_is_shown_as_typed(
    tenant: Tenant, pack: CreditPack, owner: User, typed: str, shown: str
) -> None:
    client = Client()
    client.force_login(owner)
    form = {"enabled": "", "threshold": typed, "pack": pack.slug, "monthly_cap": "100"}
    assert client.post("/auto-top-up/", form).status_code == 302

    page = client.get("/auto-top-up/")

    assert str(page.context["form"]["threshold"].value()) == typed
    assert shown in str(page.context["form"]["threshold"])
