"""COGS in the revenue's currency, through the vendor's exchange-rate table (ExchangeRate), for
a margin where the cost catalog's currency is not the revenue's (issue 13: "margin is computed
where revenue and cost share a currency, and otherwise through a dated exchange-rate table the
vendor maintains, shown as such").

Per day: each day's COGS is converted at the rate in force on that day (the pair's latest rate
effective on or before it). The rollups are daily and the pages take any range of days, so a
day's rate is exact for every range; a rate per month would misdate the days of a month before
a rate entered in its middle, and would need its own definition of a month's rate.

A group whose days all have a rate gets its converted COGS (minor units of the revenue's
currency, to the rollups' 8 places) and the dates of the rates used; one day with COGS and no
rate in force leaves the whole group unconverted ("no exchange rate", from that day): a
part-converted sum would pass for a margin it is not. Nothing here adds two currencies: a
group is one currency pair, and its sum is of one currency (the COGS before, the revenue's
after).

For rows already grouped by key and currency pair (insights.selectors.MarginRow), from any
day-grained source with `day`, `currency`, `cogs_currency` and `cogs_minor` (MarginDay, the
per-tenant and all-tenant day rollups): one statement, which the selectors run only when a
row is in two currencies; the rate in force for every day row comes from a join with the
rate table turned into periods (from a rate's day to the pair's next rate's).
"""

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import F, QuerySet

from billing.money import currency_exponent, exponents_not_two
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


@dataclass(frozen=True)
class RateTable:
    """Every rate by pair, oldest first: rate_in_force's rule in Python, for a caller that
    converts event by event (the simulator) rather than day rows in SQL."""

    by_pair: dict[tuple[str, str], list[tuple[date, Decimal]]]

    def convert_minor(
        self, *, minor: Decimal, from_currency: str, to_currency: str, day: date
    ) -> tuple[Decimal, date] | None:
        """`minor` units of `from_currency` in minor units of `to_currency` (unrounded) at the
        rate in force on `day`, and that rate's day; None without one."""
        rates = self.by_pair.get((from_currency, to_currency), [])
        found = bisect_right(rates, day, key=lambda rate: rate[0])
        if not found:
            return None
        effective_on, rate = rates[found - 1]
        scale = currency_exponent(to_currency) - currency_exponent(from_currency)
        return (minor * rate).scaleb(scale), effective_on


def rate_table() -> RateTable:
    """The whole table (a vendor keeps a few rates a pair a day at most): one query."""
    by_pair: dict[tuple[str, str], list[tuple[date, Decimal]]] = {}
    rows = ExchangeRate.objects.order_by("from_currency", "to_currency", "effective_on")
    for from_currency, to_currency, effective_on, rate in rows.values_list(
        "from_currency", "to_currency", "effective_on", "rate"
    ):
        by_pair.setdefault((from_currency, to_currency), []).append((effective_on, rate))
    return RateTable(by_pair=by_pair)


def _exponent_sql(column: str) -> tuple[str, list[Any]]:
    """The ISO 4217 exponent of the currency in `column`, in SQL (billing.money's table)."""
    codes: dict[int, list[str]] = {}
    for code, exponent in exponents_not_two().items():
        codes.setdefault(exponent, []).append(code)
    whens = " ".join(f"WHEN {column} = ANY(%s) THEN {e}" for e in sorted(codes))
    return f"CASE {whens} ELSE 2 END", [sorted(codes[e]) for e in sorted(codes)]


# Each rate's period (from its day to the pair's next rate's), with the rate per minor unit:
# the rate is per major unit, the money in each currency's minor units (1 USD = 150 JPY: a US
# cent is 1.5 yen; power of 10::numeric is exact, of two integers it would be a double). Each
# day row joins the one period it falls in (a hash join on the pair, then the day's range):
# the rate in force that day, as rate_in_force says, for every day row in one pass.
_FX = """
WITH rate AS (
    SELECT from_currency, to_currency, effective_on,
           lead(effective_on) OVER (PARTITION BY from_currency, to_currency
                                    ORDER BY effective_on) AS next_on,
           rate * power(10::numeric, ({to_exponent}) - ({from_exponent})) AS minor_rate
      FROM {table}
)
SELECT d.key, d.currency, d.cogs_currency,
       sum(d.cogs_minor * r.minor_rate) AS converted,
       min(d.day) FILTER (WHERE d.cogs_minor <> 0 AND r.minor_rate IS NULL) AS missing,
       min(r.effective_on) FILTER (WHERE d.cogs_minor <> 0) AS first_on,
       max(r.effective_on) FILTER (WHERE d.cogs_minor <> 0) AS last_on
  FROM ({days}) AS d
  LEFT JOIN rate r ON r.from_currency = d.cogs_currency AND r.to_currency = d.currency
                  AND r.effective_on <= d.day AND (r.next_on IS NULL OR d.day < r.next_on)
 GROUP BY d.key, d.currency, d.cogs_currency
"""


def fx_cogs_sql(
    *, days: QuerySet[Any], field: str, keys: Iterable[object] | None = None
) -> tuple[str, list[Any]]:
    """The statement of fx_cogs and its parameters, to run or to put in a WITH of a larger
    one: per `key` (the day rows' `field`), currency and cogs_currency of the day rows in two
    currencies (of the groups `keys` only, if given), `converted` (the sum of each day's COGS x
    the rate in force, minor units of the revenue's currency; it leaves out the days without a
    rate), `missing` (the first day with COGS and no rate: then `converted` is not the
    group's), `first_on` and `last_on` (the dates of the rates used)."""
    if keys is not None:
        days = days.filter(**{f"{field}__in": list(keys)})
    rows = (
        days.exclude(currency=F("cogs_currency"))
        .values("day", "currency", "cogs_currency", "cogs_minor", key=F(field))
        .order_by()
    )
    days_sql, days_params = rows.query.sql_with_params()
    to_exponent, to_params = _exponent_sql("to_currency")
    from_exponent, from_params = _exponent_sql("from_currency")
    # Built from constants (the table's name, the exponents' SQL) and the ORM's own SQL.
    sql = _FX.format(
        table=ExchangeRate._meta.db_table,
        to_exponent=to_exponent,
        from_exponent=from_exponent,
        days=days_sql,
    )
    return sql, [*to_params, *from_params, *days_params]


def _places(value: Decimal | None) -> Decimal:
    # To the rollups' 8 places of a minor unit (the exact product has 20 or more).
    return (value or ZERO).quantize(MONEY_PLACES, rounding=ROUND_HALF_UP)


def fx_cogs(
    *, days: QuerySet[Any], field: str, keys: Iterable[object] | None = None
) -> dict[tuple[object, str, str], FxCogs]:
    """Per (group key, revenue currency, COGS currency) of the day rows in two currencies (of
    the groups `keys` only, if given): the COGS converted day by day at the rate in force.
    One statement."""
    sql, params = fx_cogs_sql(days=days, field=field, keys=keys)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    return {
        (key, currency, cogs_currency): FxCogs(
            cogs_currency=cogs_currency,
            currency=currency,
            converted_minor=_places(converted) if missing is None else None,
            rates_from=first_on,
            rates_to=last_on,
            missing_from=missing,
        )
        for key, currency, cogs_currency, converted, missing, first_on, last_on in found
    }
