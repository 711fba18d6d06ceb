"""How a tenant sees its credits (TenantBilling.credit_display): as credits, or, for an
outcome-priced product whose credits stay invisible, as money at the vendor's price per credit
in the tenant's currency ("12 resolutions x 0.99 USD" rather than "1,188 credits"). Only what
is shown changes: the ledger stays in credits underneath."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.template.defaultfilters import floatformat

from billing.models import TenantBilling
from billing.money import currency_exponent, money_format
from billing.selectors import billing_currency_of

PRICE_PLACES = 4


@dataclass(frozen=True)
class CreditDisplay:
    money: bool = False
    currency: str = ""
    minor_per_credit: Decimal = Decimal(0)

    def minor(self, credits: Decimal) -> int:
        """What `credits` are worth in minor units of the currency, ROUND_HALF_UP."""
        worth = Decimal(credits) * self.minor_per_credit
        return int(worth.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def show(self, credits: Decimal | None, places: str = "") -> str:
        """`credits` as the tenant sees them: money ("11.88 USD"), or credits, as floatformat
        with `places` ("-4") or as stored ("" : "-10.0000")."""
        if credits is None:
            return ""
        if self.money:
            return money_format(self.minor(credits), self.currency)
        return floatformat(credits, places) if places else str(credits)

    def show_amount(self, credits: Decimal | None, places: str = "-4") -> str:
        """An amount in a sentence, with its unit: "0.25 USD", or "12.5 credits"."""
        if credits is None:
            return ""
        return self.show(credits) if self.money else f"{floatformat(credits, places)} credits"

    def figure(self, credits: Decimal) -> Decimal:
        """A chart's number: money in major units (to the minor unit), or the credits."""
        if not self.money:
            return credits
        return Decimal(self.minor(credits)).scaleb(-currency_exponent(self.currency))

    @property
    def unit(self) -> str:
        """What the figures count: the currency, or "credits"."""
        return self.currency if self.money else "credits"

    def show_price(self, credits: Decimal) -> str:
        """A price of one unit: as show(), but money keeps up to PRICE_PLACES places past the
        currency's minor unit ("0.0198 USD" for a credit at 1.98 cents), since a price list
        rounded to cents would misstate what many units cost."""
        if not self.money:
            return floatformat(credits, "-4")
        exponent = currency_exponent(self.currency)
        worth = (Decimal(credits) * self.minor_per_credit).scaleb(-exponent)
        worth = worth.quantize(Decimal(1).scaleb(-exponent - PRICE_PLACES), ROUND_HALF_UP)
        whole, _, places = f"{worth:,f}".partition(".")
        places = places.rstrip("0").ljust(exponent, "0")
        return f"{whole}.{places} {self.currency}" if places else f"{whole} {self.currency}"


CREDITS = CreditDisplay()


def credit_display_get(*, tenant_id: int) -> CreditDisplay:
    """The tenant's way of seeing credits (credits unless the vendor set money for it)."""
    row = (
        TenantBilling.objects.filter(tenant_id=tenant_id)
        .values_list("credit_display", "minor_per_credit")
        .first()
    )
    if row is None or row[0] != TenantBilling.Display.MONEY or not row[1]:
        return CREDITS
    return CreditDisplay(
        money=True, currency=billing_currency_of(tenant_id=tenant_id), minor_per_credit=row[1]
    )
