"""The only place in ratecards that takes row locks.

One lock: the RateCard row. It serializes version numbering and publishing of that card's
versions (a card's versions are always changed under it). Nothing else is locked, so there is no
order to get wrong.
"""

from ratecards.models import RateCard


def rate_card_lock(*, rate_card_id: int) -> RateCard:
    return RateCard.objects.select_for_update().get(pk=rate_card_id)
