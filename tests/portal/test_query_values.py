"""Portal pages read their cursors without a 500: '²' is a digit to str.isdigit(), not to
int(); such a value is the first page (or no top-up asked about)."""

import pytest
from django.urls import reverse

from tenants.models import Tenant
from tests.portal.conftest import Login


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("portal:statement", "after=%C2%B2"),
        ("portal:buckets", "after=%C2%B2"),
        ("portal:workflows", "after=%C2%B2"),
        ("portal:buy", "top_up=%C2%B2"),
    ],
)
def test_a_cursor_of_non_ascii_digits_is_the_first_page(
    login: Login, tenant: Tenant, name: str, query: str
) -> None:
    response = login(tenant).get(f"{reverse(name)}?{query}")
    assert response.status_code == 200
