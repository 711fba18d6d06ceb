"""cost_quote(): what an event cost the vendor, from the versioned cost catalog."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from ratecards.exceptions import CostCatalogNotFound, UnknownCostComponent
from ratecards.selectors import cost_quote
from ratecards.services import (
    cost_catalog_version_create_draft,
    cost_catalog_version_publish,
    cost_price_set,
    ratecard_seed_example,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)


def test_the_seed_posts_margin_example_costs_301_cents(frozen_time: time_machine.Traveller) -> None:
    # Catalog: $2.50 per 1M input tokens, $15 per 1M output, $0.08 a tool call, $0.10 a run.
    ratecard_seed_example()

    quote = cost_quote(
        components={
            "input_tokens": 500_000,
            "output_tokens": 100_000,
            "tool_calls": 2,
            "orchestration_runs": 1,
        },
        model_class="",
        at=NOW,
    )

    assert quote.total_minor == Decimal("301")
    assert quote.currency == "USD"
    assert quote.lines == {
        "input_tokens": Decimal("125"),
        "output_tokens": Decimal("150"),
        "tool_calls": Decimal("16"),
        "orchestration_runs": Decimal("10"),
    }
    assert quote.version.number == 1


def test_costs_stay_unrounded_in_minor_units(frozen_time: time_machine.Traveller) -> None:
    ratecard_seed_example()

    quote = cost_quote(components={"input_tokens": 1, "vector_reads": 1}, model_class=None, at=NOW)

    # 250 / 1,000,000 + 1 / 1,000 cents.
    assert quote.total_minor == Decimal("0.00125")


def test_a_model_class_price_beats_the_default(frozen_time: time_machine.Traveller) -> None:
    catalog = cost_catalog_version_create_draft(currency="USD")
    cost_price_set(version=catalog, component="input_tokens", price_minor=250, per_units=1_000_000)
    cost_price_set(
        version=catalog,
        component="input_tokens",
        model_class="turbo",
        price_minor=1000,
        per_units=1_000_000,
    )
    cost_catalog_version_publish(version=catalog, effective_from=NOW)

    turbo = cost_quote(components={"input_tokens": 1_000_000}, model_class="turbo", at=NOW)
    mini = cost_quote(components={"input_tokens": 1_000_000}, model_class="mini", at=NOW)

    assert (turbo.total_minor, mini.total_minor) == (Decimal(1000), Decimal(250))


def test_the_catalog_in_force_at_the_events_time_prices_it(
    frozen_time: time_machine.Traveller,
) -> None:
    ratecard_seed_example()
    v2 = cost_catalog_version_create_draft(currency="USD")  # copies v1's prices
    cost_price_set(version=v2, component="tool_calls", price_minor=5)
    cost_catalog_version_publish(version=v2, effective_from=NOW + timedelta(days=1))

    before = cost_quote(components={"tool_calls": 2}, model_class="", at=NOW)
    after = cost_quote(components={"tool_calls": 2}, model_class="", at=NOW + timedelta(days=1))

    assert (before.version.number, before.total_minor) == (1, Decimal(16))
    assert (after.version.number, after.total_minor) == (2, Decimal(10))


def test_an_unknown_component_is_a_typed_error(frozen_time: time_machine.Traveller) -> None:
    # A catalog that prices tool calls only (the example's prices every component).
    catalog = cost_catalog_version_create_draft(currency="USD", notes="tools only")
    cost_price_set(version=catalog, component="tool_calls", price_minor="8")
    cost_catalog_version_publish(version=catalog, effective_from=NOW)

    with pytest.raises(UnknownCostComponent) as caught:
        cost_quote(components={"gpu_seconds": 3}, model_class="", at=NOW)

    assert (caught.value.status_code, caught.value.code, caught.value.message) == (
        422,
        "unknown_cost_component",
        "The cost catalog has no price for 'gpu_seconds'.",
    )
    assert caught.value.details == {"field": "components", "component": "gpu_seconds"}


def test_no_catalog_in_force(db: None) -> None:
    with pytest.raises(CostCatalogNotFound):
        cost_quote(components={"tool_calls": 1}, model_class="", at=NOW)
