import pytest

from ratecards.models import RateCard
from ratecards.services import ratecard_create

# tests/conftest.py empties the price caches around every test.


@pytest.fixture
def card(db: None) -> RateCard:
    """The default card, with no versions yet."""
    return ratecard_create(name="Standard", slug="standard", is_default=True)
