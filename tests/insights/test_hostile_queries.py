"""Console query values that were a 500 (found by tests/test_pages_fuzz.py): a NUL in the
customers page's name filter, '²' (a digit to str.isdigit, not to int) as its page or as the
margin page's customer, NaN and Infinity in the suggested-weights page's numbers."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("vendor", is_staff=True))
    return client


def test_a_name_filter_with_a_nul_filters_by_the_rest(staff: Client, tenant: Tenant) -> None:
    response = staff.get("/console/?q=Ac%00me")

    assert response.status_code == 200
    assert response.context["q"] == "Acme"
    assert [row.tenant for row in response.context["rows"]] == [tenant]


@pytest.mark.parametrize("page", ["%C2%B2", "99999999999999999999"])
def test_a_page_number_that_is_no_number_is_the_first_page(staff: Client, page: str) -> None:
    response = staff.get(f"/console/?page={page}")

    assert response.status_code == 200
    assert response.context["page"].number == 1


def test_a_customer_that_is_no_number_is_a_404(staff: Client) -> None:
    response = staff.get("/console/margin/?tenant=%C2%B2")

    assert response.status_code == 404


@pytest.mark.parametrize("value", ["NaN", "sNaN", "-Infinity", "1e309", "abc"])
def test_a_weight_input_that_is_no_finite_number_is_said_so(staff: Client, value: str) -> None:
    response = staff.get(f"/console/weights/?target={value}&price={value}&step={value}")

    assert response.status_code == 200
    context = response.context
    # The form shows the defaults again, and says why, with nothing suggested from them.
    assert (context["target"], context["price"], context["step"]) == (
        Decimal(70),
        Decimal(1000),
        Decimal("0.01"),
    )
    assert context["errors"] == [
        f"The {name} {value!r} is not a number (at most 15 digits before the point)."
        for name in ("target", "price", "step")
    ]
    assert context["suggested"] == []


def test_weight_inputs_left_empty_are_their_defaults(staff: Client) -> None:
    response = staff.get("/console/weights/?target=&price=&step=")

    assert (response.context["target"], response.context["errors"]) == (Decimal(70), [])
