"""Rate card: what one unit of each action costs in credits now (charged always, or only on a
successful outcome), the model-class multipliers, and the versions scheduled to follow with the
date each applies to this tenant (notice and pinning included). Credits only: the vendor's own
costs are no part of a rate card."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from billing.display import credit_display_get
from portal.base import PortalView
from ratecards.exceptions import RateCardNotFound
from ratecards.models import Rate, RateCardVersion
from ratecards.selectors import rate_card_overview, version_rates


@dataclass(frozen=True)
class Change:
    action: str
    model_class: str
    before: Decimal | None  # None: a new rate
    after: Decimal | None  # None: the rate is gone
    charge_on: str


@dataclass(frozen=True)
class Upcoming:
    version: RateCardVersion
    applies_from: datetime
    rates: list[Rate]
    multipliers: dict[str, Decimal]
    changes: list[Change]  # against the version before it
    multipliers_changed: bool


def changes_between(before: list[Rate], after: list[Rate]) -> list[Change]:
    old = {(r.action, r.model_class): r for r in before}
    new = {(r.action, r.model_class): r for r in after}
    found = []
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key), new.get(key)
        was_per = was.credits_per_unit if was else None
        now_per = now.credits_per_unit if now else None
        charge_on = (now or was).get_charge_on_display()  # type: ignore[union-attr]
        if was_per != now_per or (was and now and was.charge_on != now.charge_on):
            found.append(Change(key[0], key[1], was_per, now_per, charge_on))
    return found


class RateCardPage(PortalView):
    template_name = "portal/rate_card.html"
    section = "rate_card"

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            overview = rate_card_overview(tenant=self.tenant, now=timezone.now())
        except RateCardNotFound:
            return self.page({"overview": None})
        display = credit_display_get(tenant_id=self.tenant.pk)
        upcoming = []
        previous, previous_multipliers = overview.rates, overview.multipliers
        for scheduled in overview.scheduled:
            rates, multipliers = version_rates(version=scheduled.version)
            upcoming.append(
                Upcoming(
                    version=scheduled.version,
                    applies_from=scheduled.applies_from,
                    rates=rates,
                    multipliers=multipliers,
                    changes=changes_between(previous, rates),
                    multipliers_changed=multipliers != previous_multipliers,
                )
            )
            previous, previous_multipliers = rates, multipliers
        return self.page({"overview": overview, "upcoming": upcoming, "credit_display": display})
