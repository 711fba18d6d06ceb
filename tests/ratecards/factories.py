"""Factories for rate cards. Published versions are made through the services, the only way a
version can become published."""

from datetime import datetime
from decimal import Decimal

import factory
from django.utils import timezone

from ratecards.models import Rate, RateCard, RateCardVersion
from ratecards.services import (
    multiplier_set,
    rate_set,
    ratecard_version_create_draft,
    ratecard_version_publish,
)


class RateCardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RateCard
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Card {n}")
    slug = factory.Sequence(lambda n: f"card-{n}")
    is_default = False


class RateCardVersionFactory(factory.django.DjangoModelFactory):
    """A draft version."""

    class Meta:
        model = RateCardVersion

    rate_card = factory.SubFactory(RateCardFactory)
    number = factory.Sequence(lambda n: n + 1)


class RateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rate

    version = factory.SubFactory(RateCardVersionFactory)
    action = "chat"
    model_class = ""
    credits_per_unit = Decimal("1.0000")
    charge_on = Rate.ChargeOn.ALWAYS


def publish_version(
    rate_card: RateCard,
    rates: dict[str | tuple[str, str], str],
    *,
    multipliers: dict[str, str] | None = None,
    effective_from: datetime | None = None,
    charge_on: dict[str, str] | None = None,
) -> RateCardVersion:
    """A new published version of `rate_card` holding exactly these rates.

    `rates` maps an action (or (action, model_class)) to credits per unit.
    """
    version = ratecard_version_create_draft(rate_card=rate_card)
    version.rates.all().delete()
    version.multipliers.all().delete()
    for key, credits in rates.items():
        action, model_class = key if isinstance(key, tuple) else (key, "")
        rate_set(
            version=version,
            action=action,
            model_class=model_class,
            credits_per_unit=credits,
            charge_on=(charge_on or {}).get(action, Rate.ChargeOn.ALWAYS),
        )
    for model_class, multiplier in (multipliers or {}).items():
        multiplier_set(version=version, model_class=model_class, multiplier=multiplier)
    return ratecard_version_publish(
        version=version, effective_from=effective_from or timezone.now()
    )
