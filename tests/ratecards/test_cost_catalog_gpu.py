"""GPU seconds in the cost catalog: priced per model class like every component, in the
catalog's currency, unrounded."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from ratecards.models import CostPrice
from ratecards.selectors import cost_quote, price_cache_clear
from ratecards.services import (
    cost_catalog_version_create_draft,
    cost_catalog_version_publish,
    cost_price_set,
)

pytestmark = pytest.mark.django_db


def test_a_gpu_second_is_priced_by_model_class(frozen_time: time_machine.Traveller) -> None:
    price_cache_clear()
    catalog = cost_catalog_version_create_draft(currency="USD", notes="GPU")
    # 0.05 cents a GPU second by default, 0.3 for the `turbo` class.
    cost_price_set(
        version=catalog, component=CostPrice.Component.GPU_SECONDS, price_minor="5", per_units=100
    )
    cost_price_set(
        version=catalog,
        component=CostPrice.Component.GPU_SECONDS,
        model_class="turbo",
        price_minor="3",
        per_units=10,
    )
    cost_catalog_version_publish(
        version=catalog, effective_from=datetime(2026, 1, 15, 12, tzinfo=UTC)
    )

    at = datetime(2026, 1, 15, 13, tzinfo=UTC)
    frozen_time.move_to(at)
    plain = cost_quote(components={"gpu_seconds": 7}, model_class="", at=at)
    turbo = cost_quote(components={"gpu_seconds": 7}, model_class="turbo", at=at)

    assert (plain.total_minor, plain.currency) == (Decimal("0.35"), "USD")
    assert turbo.total_minor == Decimal("2.1")
    price_cache_clear()
