"""Staff moves of the rate cards from the console: each needs its Django permission (checked
here, so no caller skips it), goes through ratecards' services, and is logged with the user and
the reason (insights.staff_actions.staff_log: the staff logger and the admin's history).

- publish a version with a notice period: `ratecards.change_ratecardversion`,
  through `ratecard_version_publish`;
- make suggested weights a draft: `ratecards.add_ratecardversion`, through
  `ratecard_version_create_draft` and `rate_set`.
"""

from datetime import timedelta
from decimal import Decimal

from django.contrib.admin.models import ADDITION, CHANGE
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from insights.staff_actions import permission_check, staff_log
from ratecards.models import Rate, RateCard, RateCardVersion
from ratecards.services import rate_set, ratecard_version_create_draft, ratecard_version_publish

PUBLISH_PERMISSION = "ratecards.change_ratecardversion"
DRAFT_PERMISSION = "ratecards.add_ratecardversion"
MAX_NOTICE_DAYS = 365


class ReasonRequired(ValueError):
    """A staff move of money or terms says why."""


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ReasonRequired("Say why: the reason is logged with your name.")
    return reason[:500]


def staff_version_publish(
    *, user: User, version: RateCardVersion, notice_days: int, reason: str
) -> RateCardVersion:
    """Publishes a draft effective `notice_days` from now; a customer who follows the card with
    a notice period of its own gets it at the later of that and now plus its notice
    (RateCardVersion.effective_for)."""
    permission_check(user=user, permission=PUBLISH_PERMISSION)
    why = _reason(reason)
    if not 0 <= notice_days <= MAX_NOTICE_DAYS:
        raise ValueError(f"The notice period is 0 to {MAX_NOTICE_DAYS} days.")
    effective_from = timezone.now() + timedelta(days=notice_days)
    with transaction.atomic():
        published = ratecard_version_publish(version=version, effective_from=effective_from)
        staff_log(
            user=user,
            obj=published,
            flag=CHANGE,
            message=(
                f"published v{published.number} of {published.rate_card.slug}, effective "
                f"{effective_from:%Y-%m-%d %H:%M} UTC ({notice_days} days' notice): {why}"
            ),
        )
    return published


def staff_weights_draft(
    *,
    user: User,
    rate_card: RateCard,
    weights: list[tuple[str, str, Decimal]],
    reason: str,
) -> RateCardVersion:
    """A new draft of `rate_card` (a copy of its latest version) with each (action, model
    class, credits per unit) of `weights` set; the rest of the card is left as it was."""
    permission_check(user=user, permission=DRAFT_PERMISSION)
    why = _reason(reason)
    with transaction.atomic():
        draft = ratecard_version_create_draft(
            rate_card=rate_card, notes=f"Suggested weights: {why}"
        )
        # A rate changed keeps its charge policy (outcome pricing stays); a new one is always.
        policies = {(r.action, r.model_class): r.charge_on for r in draft.rates.all()}
        for action, model_class, credits in weights:
            rate_set(
                version=draft,
                action=action,
                model_class=model_class,
                credits_per_unit=credits,
                charge_on=policies.get((action, model_class), Rate.ChargeOn.ALWAYS),
            )
        staff_log(
            user=user,
            obj=draft,
            flag=ADDITION,
            message=f"made draft v{draft.number} of {rate_card.slug} from {len(weights)} "
            f"suggested weights: {why}",
        )
    return draft
