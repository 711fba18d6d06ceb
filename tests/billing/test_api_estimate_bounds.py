"""POST /api/v1/estimates is bounded in rows and in cost: each bound is a 422 naming the field,
and the largest estimate inside the bounds is answered (never a 500)."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from billing.models import Plan
from ratecards.services import ratecard_seed_example

pytestmark = pytest.mark.django_db
URL = "/api/v1/estimates"


@pytest.fixture
def card(db: None) -> None:
    ratecard_seed_example()


def invalid(fields: dict[str, Any], message: str) -> dict[str, Any]:
    return {"error": {"code": "invalid_input", "message": message, "fields": fields}}


def row(count: int | str = 1, **extra: Any) -> dict[str, Any]:
    return {"action": "chat", "monthly_count": count, **extra}


def test_a_hundred_rows_are_estimated_and_a_hundred_and_one_are_refused(
    api_client: APIClient, card: None, plans: dict[str, Plan]
) -> None:
    answered = api_client.post(URL, {"actions": [row()] * 100}, format="json")
    refused = api_client.post(URL, {"actions": [row()] * 101}, format="json")

    assert (answered.status_code, answered.json()["credits"]) == (200, "100.0000")
    assert refused.status_code == 422
    message = "Ensure this field has no more than 100 elements."
    fields = {"actions": [message]}
    assert refused.json() == invalid(fields, f"actions: {message}")


@pytest.mark.parametrize(
    ("count", "message"),
    [
        (10**9 + 1, "Ensure this value is less than or equal to 1000000000."),
        ("1e24", "Ensure that there are no more than 18 digits in total."),
        (-1, "Ensure this value is greater than or equal to 0."),
    ],
)
def test_a_count_out_of_bounds_is_refused_naming_it(
    api_client: APIClient, card: None, count: int | str, message: str
) -> None:
    response = api_client.post(URL, {"actions": [row(), row(count)]}, format="json")

    assert response.status_code == 422
    fields = {"actions[1].monthly_count": [message]}
    assert response.json() == invalid(fields, f"actions[1].monthly_count: {message}")


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        (
            {f"class-{i}": "0.05" for i in range(11)},
            "A model mix names 10 model classes at most.",
        ),
        (
            {"turbo model": "0.5"},
            "A model mix is keyed by model class names (letters, digits, - and _).",
        ),
        (
            {"x" * 65: "0.5"},
            "A model mix is keyed by model class names (letters, digits, - and _).",
        ),
        ({"turbo": "0.6", "mini": "0.5"}, "The shares of a model mix add up to 1 at most."),
    ],
)
def test_a_model_mix_out_of_bounds_is_refused_naming_it(
    api_client: APIClient, card: None, mix: dict[str, str], message: str
) -> None:
    response = api_client.post(URL, {"actions": [row(10, model_mix=mix)]}, format="json")

    assert response.status_code == 422
    fields = {"actions[0].model_mix": [message]}
    assert response.json() == invalid(fields, f"actions[0].model_mix: {message}")


def test_a_total_beyond_what_an_estimate_covers_is_refused(
    api_client: APIClient, card: None, plans: dict[str, Plan]
) -> None:
    # web_research on turbo: 10 credits x 6 = 60 a use, 6 x 10^10 a row at the largest count.
    biggest = {"action": "web_research", "monthly_count": 10**9, "model_mix": {"turbo": "1"}}
    inside = api_client.post(URL, {"actions": [biggest] * 16}, format="json")
    beyond = api_client.post(URL, {"actions": [biggest] * 17}, format="json")

    assert (inside.status_code, inside.json()["credits"]) == (200, "960000000000.0000")
    assert beyond.status_code == 422
    message = "These actions would cost more than 1,000,000,000,000 credits a month."
    assert beyond.json() == {
        "error": {
            "code": "estimate_too_large",
            "message": message,
            "fields": {"actions": [message]},
        }
    }
