"""Factories for billing's catalogue rows. Commercial records that move credits (subscriptions,
top-ups, contracts' grants) are made through the services, as in production."""

from decimal import Decimal

import factory

from billing.models import CreditPack, Plan


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.Sequence(lambda n: f"Plan {n}")
    price_minor = 7_900
    currency = "USD"
    included_credits = Decimal("750")


class CreditPackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditPack
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"pack-{n}")
    name = factory.Sequence(lambda n: f"Pack {n}")
    credits = Decimal("500")
    price_minor = 6_500
    currency = "USD"
