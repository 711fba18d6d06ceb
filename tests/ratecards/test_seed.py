from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from ratecards.models import CostCatalogVersion, RateCard, RateCardVersion
from ratecards.selectors import price
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)


def test_the_example_card(frozen_time: time_machine.Traveller, tenant: Tenant) -> None:
    card = ratecard_seed_example()

    version = card.versions.get()
    assert (card.slug, card.name, card.is_default) == ("standard", "Standard", True)
    assert (version.number, version.status, version.effective_from) == (1, "published", NOW)
    assert list(
        version.rates.values_list("action", "model_class", "credits_per_unit", "charge_on")
    ) == [
        ("action_execution", "", Decimal("15.0000"), "always"),
        ("chat", "", Decimal("1.0000"), "always"),
        ("doc_search", "", Decimal("3.0000"), "always"),
        ("resolution", "", Decimal("50.0000"), "success"),
        ("web_research", "", Decimal("10.0000"), "always"),
    ]
    turbo_chat = price(tenant=tenant, action="chat", model_class="turbo", quantity=1, at=NOW)
    assert turbo_chat.credits == Decimal("6.0000")


def test_the_seed_is_idempotent(frozen_time: time_machine.Traveller) -> None:
    first = ratecard_seed_example()
    frozen_time.shift(60)

    second = ratecard_seed_example()

    assert first == second
    assert (RateCard.objects.count(), RateCardVersion.objects.count()) == (1, 1)
    assert CostCatalogVersion.objects.count() == 1
