"""Integers past what their column holds are a 422 naming the field, not a database error."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from billing.models import AutoTopUpPolicy, CreditPack

pytestmark = pytest.mark.django_db
BIGINT_MAX = 2**63 - 1


def _put(client: APIClient, cap: Any) -> Any:
    body = {"enabled": False, "threshold": "100", "pack": "pack-500", "monthly_cap_minor": cap}
    return client.put("/api/v1/auto-top-up", body, format="json")


@pytest.mark.parametrize("cap", [BIGINT_MAX + 1, 10**400])
def test_a_monthly_cap_past_bigint_is_a_422(
    api_client: APIClient, pack: CreditPack, cap: int
) -> None:
    response = _put(api_client, cap)

    message = f"Ensure this value is less than or equal to {BIGINT_MAX}."
    assert (response.status_code, response.json()) == (
        422,
        {
            "error": {
                "code": "invalid_input",
                "message": f"monthly_cap_minor: {message}",
                "fields": {"monthly_cap_minor": [message]},
            }
        },
    )
    assert not AutoTopUpPolicy.objects.exists()


def test_the_largest_monthly_cap_the_column_holds_is_kept(
    api_client: APIClient, pack: CreditPack
) -> None:
    response = _put(api_client, BIGINT_MAX)

    assert (response.status_code, response.json()["monthly_cap_minor"]) == (200, BIGINT_MAX)
    assert AutoTopUpPolicy.objects.get().monthly_cap_minor == BIGINT_MAX
