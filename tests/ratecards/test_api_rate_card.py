"""GET /api/v1/rate-card: the rates in force for this tenant now, and what is scheduled."""

from datetime import UTC, datetime

import pytest
import time_machine
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from ratecards.models import RateCard
from ratecards.services import ratecard_assign, ratecard_create
from tenants.models import Tenant
from tests.ratecards.factories import publish_version

pytestmark = pytest.mark.django_db

FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2026, 3, 1, tzinfo=UTC)


def test_the_rate_card_in_force_and_the_scheduled_versions(
    frozen_time: time_machine.Traveller, tenant: Tenant, api_client: APIClient, card: RateCard
) -> None:
    publish_version(
        card,
        {"chat": "1", ("chat", "mini"): "0.5", "resolution": "50"},
        multipliers={"turbo": "6"},
        charge_on={"resolution": "success"},
    )
    publish_version(card, {"chat": "2"}, effective_from=FEB_1)
    ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)

    response = api_client.get("/api/v1/rate-card")

    assert response.status_code == 200
    assert response.json() == {
        "rate_card": {"name": "Standard", "slug": "standard"},
        "version": {"number": 1, "effective_from": "2026-01-15T12:00:00Z"},
        "rates": [
            {
                "action": "chat",
                "model_class": "",
                "credits_per_unit": "1.0000",
                "charge_on": "always",
            },
            {
                "action": "chat",
                "model_class": "mini",
                "credits_per_unit": "0.5000",
                "charge_on": "always",
            },
            {
                "action": "resolution",
                "model_class": "",
                "credits_per_unit": "50.0000",
                "charge_on": "success",
            },
        ],
        "multipliers": [{"model_class": "turbo", "multiplier": "6.0000"}],
        "assignment": {
            "mode": "follow",
            "notice_days": 30,
            "pinned_version": None,
            "pinned_until": None,
        },
        "scheduled": [
            {
                "number": 2,
                "effective_from": "2026-02-01T00:00:00Z",
                "applies_from": "2026-02-14T12:00:00Z",
                "rates": [
                    {
                        "action": "chat",
                        "model_class": "",
                        "credits_per_unit": "2.0000",
                        "charge_on": "always",
                    }
                ],
                "multipliers": [],
            }
        ],
    }


def test_a_pinned_tenant_sees_its_pin(
    frozen_time: time_machine.Traveller, tenant: Tenant, api_client: APIClient, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"})
    ratecard_assign(
        tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1, pinned_until=MAR_1
    )

    body = api_client.get("/api/v1/rate-card").json()

    assert body["version"] == {"number": 1, "effective_from": "2026-01-15T12:00:00Z"}
    assert body["assignment"] == {
        "mode": "pinned",
        "notice_days": 0,
        "pinned_version": 1,
        "pinned_until": "2026-03-01T00:00:00Z",
    }
    assert [(s["number"], s["applies_from"]) for s in body["scheduled"]] == [
        (2, "2026-03-01T00:00:00Z")
    ]


def test_each_tenant_sees_its_own_card(
    frozen_time: time_machine.Traveller,
    tenant: Tenant,
    api_client: APIClient,
    other_client: APIClient,
    card: RateCard,
) -> None:
    publish_version(card, {"chat": "1"})
    enterprise = ratecard_create(name="Enterprise", slug="enterprise")
    publish_version(enterprise, {"chat": "0.8"})
    ratecard_assign(tenant=tenant, rate_card=enterprise, mode="follow")

    mine = api_client.get("/api/v1/rate-card").json()
    theirs = other_client.get("/api/v1/rate-card").json()

    assert (mine["rate_card"]["slug"], mine["rates"][0]["credits_per_unit"]) == (
        "enterprise",
        "0.8000",
    )
    assert (theirs["rate_card"]["slug"], theirs["rates"][0]["credits_per_unit"]) == (
        "standard",
        "1.0000",
    )


def test_no_rate_card_is_422(tenant: Tenant, api_client: APIClient) -> None:
    response = api_client.get("/api/v1/rate-card")

    assert (response.status_code, response.json()) == (
        422,
        {
            "error": {
                "code": "no_rate_card",
                "message": "No rate card version is in force for this tenant.",
            }
        },
    )


def test_needs_an_api_key(db: None) -> None:
    response = APIClient().get("/api/v1/rate-card")

    assert response.status_code == 401


def test_the_schema_documents_it(db: None) -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)

    operation = schema["paths"]["/api/v1/rate-card"]["get"]
    assert operation["summary"] == (
        "The rate card in force for this tenant, and the versions scheduled to follow"
    )
    assert "422 `no_rate_card`" in operation["description"]
