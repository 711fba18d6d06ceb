"""Console pages read their query strings without a 500: digits that are not ASCII ('²' is a
digit to str.isdigit, not to int) and days at the calendar's ends are the defaults or a 404."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tenants.models import Tenant


@pytest.fixture
def staff_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("vendor", is_staff=True))
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/console/?end=9999-12-31",
        "/console/exchange-rates/?after=%C2%B2",
        "/console/plan-fit/?up=%C2%B2",
        "/console/?end=0001-01-01",
        "/console/?start=0001-01-01&end=0001-01-05",
        "/console/margin/?end=0001-01-01",
        "/console/exchange-rates/?after=9999999999999999999999",
    ],
)
def test_a_hostile_query_value_is_no_500(staff_client: Client, url: str) -> None:
    assert staff_client.get(url).status_code in (200, 404)


def test_a_hostile_cursor_on_a_customer_page_is_the_first_page(
    staff_client: Client, tenant: Tenant
) -> None:
    response = staff_client.get(f"/console/customers/{tenant.pk}/?after=%C2%B2")
    assert response.status_code == 200


def test_a_simulation_asked_with_a_hostile_number_is_no_500(staff_client: Client) -> None:
    response = staff_client.post("/console/simulations/", {"version": "²", "days": "²"})
    assert response.status_code == 404
