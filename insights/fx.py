"""COGS in the revenue's currency, through the vendor's exchange-rate table (ExchangeRate), for
a margin where the cost catalog's currency is not the revenue's (issue 13: "margin is computed
where revenue and cost share a currency, and otherwise through a dated exchange-rate table the
vendor maintains, shown as such").

Per day: each day's COGS is converted at the rate in force on that day (the pair's latest rate
effective on or before it). The rollups are daily and the pages take any range of days, so a
day's rate is exact for every range; a rate per month would misdate the days of a month before
a rate entered in its middle, and would need its own definition of a month's rate.

A group whose days all have a rate gets its converted COGS (unrounded, minor units of the
revenue's currency) and the dates of the rates used; one day with COGS and no rate in force
leaves the whole group unconverted ("no exchange rate", from that day): a part-converted sum
would pass for a margin it is not. Nothing here adds two currencies: a group is one currency
pair, and its sum is of one currency (the COGS before, the revenue's after).

For rows already grouped by key and currency pair (insights.selectors.MarginRow), from any
day-grained source with `day`, `currency`, `cogs_currency` and `cogs_minor` (MarginDay, the
per-tenant and all-tenant day rollups): one statement, which the selectors run only when a
row is in two currencies; the rate in force is looked up in SQL for each day row, on the
table's unique (from, to, effective_on) index.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import (
    Case,
    DecimalField,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)

from billing.money import exponents_not_two
from insights.models import ExchangeRate

ZERO = Decimal("0")
MONEY_PLACES = Decimal("1E-8")


@dataclass(frozen=True)
class FxCogs:
    """A group's COGS put into its revenue's currency, or why not."""

    cogs_currency: str
    currency: str
    # Minor units of `currency` to 8 places, as the rollups keep money; None when a day with
    # COGS had no rate in force.
    converted_minor: Decimal | None
    # The effective dates of the rates used (the earliest and the latest).
    rates_from: date | None
    rates_to: date | None
    # The first day with COGS and no rate in force (then converted_minor is None).
    missing_from: date | None

    @property
    def rates_label(self) -> str:
        """'2026-01-01' or '2026-01-01 to 2026-01-14': the dates of the rates used."""
        if self.rates_from is None or self.rates_to is None:
            return ""
        if self.rates_from == self.rates_to:
            return self.rates_from.isoformat()
        return f"{self.rates_from.isoformat()} to {self.rates_to.isoformat()}"


def rate_in_force(*, from_currency: str, to_currency: str, day: date) -> ExchangeRate | None:
    """The pair's latest rate effective on or before `day` (None: none yet)."""
    return (
        ExchangeRate.objects.filter(
            from_currency=from_currency, to_currency=to_currency, effective_on__lte=day
        )
        .order_by("-effective_on")
        .first()
    )


def _exponent(field: str) -> Case:
    """The ISO 4217 exponent of the currency in `field`, in SQL (billing.money's table)."""
    codes: dict[int, list[str]] = {}
    for code, exponent in exponents_not_two().items():
        codes.setdefault(exponent, []).append(code)
    return Case(
        *[When(**{f"{field}__in": sorted(c)}, then=Value(e)) for e, c in sorted(codes.items())],
        default=Value(2),
        output_field=IntegerField(),
    )


def _in_force() -> QuerySet[ExchangeRate]:
    """The same rule as rate_in_force, for each row of an outer day-grained queryset."""
    return ExchangeRate.objects.filter(
        from_currency=OuterRef("cogs_currency"),
        to_currency=OuterRef("currency"),
        effective_on__lte=OuterRef("day"),
    ).order_by("-effective_on")


def _minor_rate() -> ExpressionWrapper:
    """The rate per minor unit: the rate is per major unit, the money in each currency's minor
    units (1 USD = 150 JPY: a US cent is 1.5 yen)."""
    return ExpressionWrapper(
        F("rate")
        # numeric, exact (power of two integers would be a double).
        * Func(
            _exponent("to_currency") - _exponent("from_currency"),
            template="power(10::numeric, %(expressions)s)",
        ),
        output_field=DecimalField(max_digits=40, decimal_places=20),
    )


def fx_cogs_rows(
    *, days: QuerySet[Any], field: str, keys: Iterable[object] | None = None
) -> QuerySet[Any]:
    """The statement of fx_cogs, to run or to embed in a larger one (its
    `.query.sql_with_params()`): per `field`, currency and cogs_currency of the day rows in two
    currencies, `converted` (the sum of each day's COGS x the rate in force, minor units of the
    revenue's currency; it leaves out the days without a rate), `missing` (the first day with
    COGS and no rate: then `converted` is not the group's), `first_on` and `last_on` (the dates
    of the rates used)."""
    if keys is not None:
        days = days.filter(**{f"{field}__in": list(keys)})
    has_cost = ~Q(cogs_minor=0)
    return (
        days.exclude(currency=F("cogs_currency"))
        .annotate(
            fx_rate=Subquery(_in_force().values(minor_rate=_minor_rate())[:1]),
            fx_on=Subquery(_in_force().values("effective_on")[:1]),
        )
        .values(field, "currency", "cogs_currency")
        .annotate(
            converted=Sum(
                ExpressionWrapper(
                    F("cogs_minor") * F("fx_rate"),
                    output_field=DecimalField(max_digits=60, decimal_places=20),
                )
            ),
            missing=Min("day", filter=has_cost & Q(fx_rate__isnull=True)),
            first_on=Min("fx_on", filter=has_cost),
            last_on=Max("fx_on", filter=has_cost),
        )
        .order_by()
    )


def fx_cogs_sql(*, days: QuerySet[Any], field: str) -> tuple[str, tuple[Any, ...]]:
    """fx_cogs_rows' SQL and parameters, for a WITH of a larger statement."""
    sql, params = fx_cogs_rows(days=days, field=field).query.sql_with_params()
    return sql, tuple(params)


def _places(value: Decimal | None) -> Decimal:
    # To the rollups' 8 places of a minor unit (the exact product has 20 or more).
    return (value or ZERO).quantize(MONEY_PLACES, rounding=ROUND_HALF_UP)


def fx_cogs(
    *, days: QuerySet[Any], field: str, keys: Iterable[object] | None = None
) -> dict[tuple[object, str, str], FxCogs]:
    """Per (group key, revenue currency, COGS currency) of the day rows in two currencies (of
    the groups `keys` only, if given): the COGS converted day by day at the rate in force.
    One statement."""
    return {
        (g[field], g["currency"], g["cogs_currency"]): FxCogs(
            cogs_currency=g["cogs_currency"],
            currency=g["currency"],
            converted_minor=_places(g["converted"]) if g["missing"] is None else None,
            rates_from=g["first_on"],
            rates_to=g["last_on"],
            missing_from=g["missing"],
        )
        for g in fx_cogs_rows(days=days, field=field, keys=keys)
    }
