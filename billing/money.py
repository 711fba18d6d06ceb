"""Money is an integer count of the currency's minor unit (ISO 4217): this module is the one
place that turns it into a shown amount or back, with Decimal and the currency's own exponent
(JPY has no minor unit, KWD has three), never float."""

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor-unit exponents other than 2 (the default), for the currencies in use.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}


# ISO 4217's active currency codes (fund and metal codes left out: no one pays in them).
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD
    IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL
    MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN
    SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES
    VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG""".split()  # noqa: SIM905 (180 lines as a list)
)


def exponents_not_two() -> dict[str, int]:
    """The currencies whose exponent is not 2, with theirs (for a lookup written in SQL)."""
    return dict(_EXPONENTS)


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's major unit."""
    return _EXPONENTS.get(currency.upper(), 2)


def money_from_minor(minor: int, currency: str) -> Decimal:
    """6500, "USD" → Decimal("65.00"); 6500, "JPY" → Decimal("6500")."""
    return Decimal(minor).scaleb(-currency_exponent(currency))


def money_format(minor: int, currency: str) -> str:
    """6500, "USD" → "65.00 USD"; 123456, "JPY" → "123,456 JPY"; 1500, "KWD" → "1.500 KWD"."""
    exponent = currency_exponent(currency)
    return f"{money_from_minor(minor, currency):,.{exponent}f} {currency}"


def money_to_minor(amount: Decimal, currency: str) -> int:
    """Decimal("65.00"), "USD" → 6500. An amount finer than the currency's minor unit (0.5 JPY,
    0.001 USD) is refused with ValueError rather than rounded: money is never made up."""
    minor = amount.scaleb(currency_exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(
            f"{currency} amounts have {currency_exponent(currency)} decimal place(s) at most."
        )
    return int(minor)


def price_per_1000_minor(price_minor: int, credits: Decimal) -> int:
    """What 1,000 credits cost at `price_minor` for `credits`, in minor units, ROUND_HALF_UP:
    6500 for 500 credits → 13000 (the portal's and the API's "price per 1,000")."""
    per_1000 = Decimal(price_minor) * 1000 / credits
    return int(per_1000.quantize(Decimal(1), rounding=ROUND_HALF_UP))
