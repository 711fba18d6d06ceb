"""Packs as a tenant is offered them: priced in one currency (CreditPackPrice, else the pack's
list price when that is the currency), never a price in another. `pack_get` / `pack_list` in
billing/selectors.py still answer by list price and list currency (the portal's buy page reads
them until it moves to `pack_offer_list`)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Sum

from billing.exceptions import CurrencyNotOffered, PackNotFound
from billing.models import CreditPack, CreditPackPrice, TopUp


@dataclass(frozen=True)
class PackOffer:
    """A pack at its price in one currency."""

    pack: CreditPack
    price_minor: int
    currency: str

    @property
    def slug(self) -> str:
        return self.pack.slug

    @property
    def name(self) -> str:
        return self.pack.name

    @property
    def credits(self) -> Decimal:
        return self.pack.credits


def pack_price_get(*, pack: CreditPack, currency: str) -> int | None:
    """The pack's price in `currency` (minor units), or None when it is not sold in it."""
    currency = currency.upper()
    price = (
        CreditPackPrice.objects.filter(pack=pack, currency=currency)
        .values_list("price_minor", flat=True)
        .first()
    )
    if price is None and pack.currency == currency:
        return pack.price_minor
    return price


def pack_offer_of(*, pack: CreditPack, currency: str) -> PackOffer:
    """The pack in `currency`; CurrencyNotOffered (422, naming `currency`) if it has no price."""
    price = pack_price_get(pack=pack, currency=currency)
    if price is None:
        raise CurrencyNotOffered(
            f"The pack {pack.slug} has no price in {currency.upper()}.", field="currency"
        )
    return PackOffer(pack=pack, price_minor=price, currency=currency.upper())


def pack_offer_get(*, slug: str, currency: str) -> PackOffer:
    """An active pack priced in `currency`; PackNotFound (422, naming `pack`) for a slug that no
    active pack has, or whose pack has no price in `currency` (an unknown pack there)."""
    # PostgreSQL compares no text holding a NUL (it raises): no slug holds one.
    pack = None if "\x00" in slug else CreditPack.objects.filter(slug=slug, active=True).first()
    price = pack_price_get(pack=pack, currency=currency) if pack is not None else None
    if pack is None or price is None:
        raise PackNotFound(
            f"No active credit pack in {currency.upper()} has the slug '{slug}'.",
            pack=slug,
            field="pack",
        )
    return PackOffer(pack=pack, price_minor=price, currency=currency.upper())


def pack_offer_list(*, currency: str) -> list[PackOffer]:
    """The active packs priced in `currency`, cheapest first."""
    currency = currency.upper()
    prices = dict(
        CreditPackPrice.objects.filter(currency=currency, pack__active=True).values_list(
            "pack_id", "price_minor"
        )
    )
    offers = []
    for pack in CreditPack.objects.filter(active=True):
        price = prices.get(pack.pk, pack.price_minor if pack.currency == currency else None)
        if price is not None:
            offers.append(PackOffer(pack=pack, price_minor=price, currency=currency))
    return sorted(offers, key=lambda o: (o.price_minor, o.slug))


def auto_topup_spent_in(*, tenant_id: int, since: datetime, currency: str) -> int:
    """Minor units of the tenant's auto top-ups since `since` in `currency`, pending ones
    included: the cap is money in one currency, and amounts in another are never added to it."""
    return (
        TopUp.objects.filter(
            tenant_id=tenant_id,
            auto=True,
            currency=currency.upper(),
            created_at__gte=since,
            status__in=[TopUp.Status.PENDING, TopUp.Status.SUCCEEDED],
        ).aggregate(total=Sum("amount_minor"))["total"]
        or 0
    )
