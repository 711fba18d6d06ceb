"""Console pages read their query strings without a 500: digits that are not ASCII ('²' is a
digit to str.isdigit, not to int) and days at the calendar's ends read as absent (the last 30
days)."""

from datetime import date

import pytest
import time_machine
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
    with time_machine.travel("2026-03-31 12:00:00+00:00", tick=False):
        response = staff_client.get(url)

    assert response.status_code == 200
    if "start" in response.context:
        assert (response.context["start"], response.context["end"]) == (
            date(2026, 3, 2),
            date(2026, 3, 31),
        )


def test_a_hostile_cursor_on_a_customer_page_is_the_first_page(
    staff_client: Client, tenant: Tenant
) -> None:
    response = staff_client.get(f"/console/customers/{tenant.pk}/?after=%C2%B2")
    assert response.status_code == 200


def test_a_simulation_asked_with_a_hostile_number_is_no_500(staff_client: Client) -> None:
    response = staff_client.post("/console/simulations/", {"version": "²", "days": "²"})
    assert response.status_code == 404
