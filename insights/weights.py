"""Suggested weights: what each rate should be, in credits per unit, for a target gross margin.

For an action (in a model class) whose unit costs the vendor `c` (minor units, observed over a
window) and credits that sell for `p` (minor units per credit), a weight `w` earns `w x p` per
unit and its gross margin is (w p - c) / (w p). The margin reaches the target `m` when
w >= c / (p (1 - m)). The weight is rounded UP to the vendor's step, so the margin it gives is
never under the target. A zero cost suggests 0, an action the vendor may give away (or keep
at today's weight, their choice).

Model classes: the weight of (action, class) stands on its own; `multiplier_suggest` reads a
class's weights against the default class's, the x6 of `turbo` when its cost is six times.
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from insights.selectors import CostPerUnit, gross_margin
from ratecards.models import RateCardVersion
from ratecards.selectors import version_rates

ZERO = Decimal("0")
ONE = Decimal("1")


class WeightInputError(ValueError):
    """A target margin outside [0, 1), a price or a step that is not positive."""


def weight_for(
    *,
    cost_per_unit_minor: Decimal,
    credit_price_minor: Decimal,
    target_margin: Decimal,
    step: Decimal,
) -> Decimal:
    """The smallest multiple of `step` whose margin at `credit_price_minor` is >= target."""
    if not ZERO <= target_margin < ONE:
        raise WeightInputError("The target margin must be at least 0 and under 1 (100 %).")
    if credit_price_minor <= 0 or step <= 0:
        raise WeightInputError("The price of a credit and the step must be positive.")
    if cost_per_unit_minor <= 0:
        return ZERO
    exact = cost_per_unit_minor / (credit_price_minor * (ONE - target_margin))
    steps = (exact / step).to_integral_value(rounding=ROUND_CEILING)
    return (steps * step).normalize()


@dataclass(frozen=True)
class SuggestedWeight:
    action: str
    model_class: str
    cost_per_unit_minor: Decimal | None
    current: Decimal | None  # credits per unit today (None: no rate for it today)
    suggested: Decimal | None  # None: no unit of known cost observed
    events_without_cost: int

    @property
    def margin_now(self) -> Decimal | None:
        return self._margin(self.current)

    @property
    def margin_suggested(self) -> Decimal | None:
        return self._margin(self.suggested)

    # The margin a weight gives, at the price these suggestions were made for.
    price: Decimal = ONE

    def _margin(self, weight: Decimal | None) -> Decimal | None:
        if weight is None or self.cost_per_unit_minor is None:
            return None
        return gross_margin(revenue=weight * self.price, cogs=self.cost_per_unit_minor)


def weights_suggest(
    *,
    observed: list[CostPerUnit],
    current: dict[tuple[str, str], Decimal],
    credit_price_minor: Decimal,
    target_margin: Decimal,
    step: Decimal,
) -> list[SuggestedWeight]:
    """A weight for each action and model class observed, beside today's (`current`, keyed by
    (action, model_class)). Costs in different currencies are not mixed: the caller passes the
    observations in the currency the credits are priced in."""
    out = []
    for row in observed:
        per_unit = row.per_unit_minor
        out.append(
            SuggestedWeight(
                action=row.action,
                model_class=row.model_class,
                cost_per_unit_minor=per_unit,
                current=current.get((row.action, row.model_class)),
                suggested=None
                if per_unit is None
                else weight_for(
                    cost_per_unit_minor=per_unit,
                    credit_price_minor=credit_price_minor,
                    target_margin=target_margin,
                    step=step,
                ),
                events_without_cost=row.events_without_cost,
                price=credit_price_minor,
            )
        )
    return out


def multiplier_suggest(*, weights: list[SuggestedWeight], model_class: str) -> Decimal | None:
    """The class's multiplier the suggestions imply: its weight over the default class's, for
    the actions suggested in both; None when they disagree or none is shared."""
    default = {w.action: w.suggested for w in weights if w.model_class == "" and w.suggested}
    ratios = {
        w.suggested / default[w.action]
        for w in weights
        if w.model_class == model_class and w.suggested and w.action in default
    }
    return ratios.pop().normalize() if len(ratios) == 1 else None


def current_weights(
    *, version: RateCardVersion, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], Decimal]:
    """The credits per unit `version` charges for each (action, model class) in `keys`, by the
    pricing rule (an exact rate, else the action's default rate x the class's multiplier);
    keys it does not price are left out."""
    rates, multipliers = version_rates(version=version)
    exact = {(r.action, r.model_class): r.credits_per_unit for r in rates}
    out: dict[tuple[str, str], Decimal] = {}
    for action, model_class in keys:
        if (action, model_class) in exact:
            out[(action, model_class)] = exact[(action, model_class)]
        elif (action, "") in exact and model_class in multipliers:
            out[(action, model_class)] = exact[(action, "")] * multipliers[model_class]
    return out
