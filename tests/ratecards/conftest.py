from collections.abc import Iterator

import pytest

from ratecards.models import RateCard
from ratecards.selectors import price_cache_clear
from ratecards.services import ratecard_create


@pytest.fixture(autouse=True)
def _fresh_price_cache() -> Iterator[None]:
    # Each test builds its own cards; never let one test's cached versions leak into the next.
    price_cache_clear()
    yield
    price_cache_clear()


@pytest.fixture
def card(db: None) -> RateCard:
    """The default card, with no versions yet."""
    return ratecard_create(name="Standard", slug="standard", is_default=True)
