"""The vendor's admin: drafts, publishing with an effective date, the trap column."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client

from ratecards.models import CostCatalogVersion, RateCard, RateCardAssignment, RateCardVersion
from ratecards.services import ratecard_assign, ratecard_seed_example
from tenants.models import Tenant
from tests.ratecards.factories import publish_version

pytestmark = pytest.mark.django_db

MAR_1 = datetime(2026, 3, 1, tzinfo=UTC)


def test_pages_render(frozen_time: time_machine.Traveller, admin_client: Client) -> None:
    card = ratecard_seed_example()
    version = card.versions.get()
    catalog = CostCatalogVersion.objects.get()

    for url in [
        "/admin/ratecards/ratecard/",
        f"/admin/ratecards/ratecard/{card.pk}/change/",
        "/admin/ratecards/ratecardversion/",
        f"/admin/ratecards/ratecardversion/{version.pk}/change/",
        "/admin/ratecards/ratecardassignment/",
        "/admin/ratecards/ratecardassignment/add/",
        "/admin/ratecards/costcatalogversion/",
        f"/admin/ratecards/costcatalogversion/{catalog.pk}/change/",
    ]:
        assert admin_client.get(url).status_code == 200, url


def test_create_a_draft_then_publish_it_with_an_effective_date(
    frozen_time: time_machine.Traveller, admin_client: Client
) -> None:
    card = ratecard_seed_example()

    admin_client.post(
        "/admin/ratecards/ratecard/",
        {"action": "create_draft", "_selected_action": [card.pk]},
    )
    draft = card.versions.get(number=2)
    form = admin_client.post(
        "/admin/ratecards/ratecardversion/",
        {"action": "publish", "_selected_action": [draft.pk]},
    )
    admin_client.post(
        "/admin/ratecards/ratecardversion/",
        {
            "action": "publish",
            "_selected_action": [draft.pk],
            "apply": "Publish",
            "effective_from": "2026-02-01 00:00",
        },
    )

    assert draft.rates.count() == 5
    assert b"Publish with an effective date" in form.content
    draft.refresh_from_db()
    assert (draft.status, draft.effective_from) == ("published", datetime(2026, 2, 1, tzinfo=UTC))


def test_publishing_in_the_past_is_refused_with_a_message(
    frozen_time: time_machine.Traveller, admin_client: Client
) -> None:
    card = ratecard_seed_example()
    admin_client.post(
        "/admin/ratecards/ratecard/", {"action": "create_draft", "_selected_action": [card.pk]}
    )
    draft = card.versions.get(number=2)

    response = admin_client.post(
        "/admin/ratecards/ratecardversion/",
        {
            "action": "publish",
            "_selected_action": [draft.pk],
            "apply": "Publish",
            "effective_from": "2026-01-01 00:00",
        },
        follow=True,
    )

    assert b"effective_from lies in the past" in response.content
    assert RateCardVersion.objects.get(pk=draft.pk).status == "draft"


def test_a_published_version_is_read_only(
    frozen_time: time_machine.Traveller, admin_client: Client
) -> None:
    version = ratecard_seed_example().versions.get()

    response = admin_client.post(
        f"/admin/ratecards/ratecardversion/{version.pk}/change/", {"notes": "changed"}
    )

    assert response.status_code == 403
    version.refresh_from_db()
    assert version.notes == "Example card."


def test_the_assignment_list_flags_the_rate_card_trap(
    frozen_time: time_machine.Traveller, admin_client: Client, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"}, effective_from=datetime(2026, 2, 1, tzinfo=UTC))
    ratecard_assign(
        tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1, pinned_until=MAR_1
    )

    response = admin_client.get("/admin/ratecards/ratecardassignment/")

    assert (
        "⚠ pinned to v1 until 2026-03-01; 1 newer version(s), newest v2 effective 2026-02-01"
        in response.content.decode()
    )


def test_the_assignment_form_validates_through_the_service(
    frozen_time: time_machine.Traveller, admin_client: Client, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})

    response = admin_client.post(
        "/admin/ratecards/ratecardassignment/add/",
        {"tenant": tenant.pk, "rate_card": card.pk, "mode": "pinned", "notice_days": 0},
    )

    assert response.status_code == 200
    assert "A pinned assignment needs a version." in response.content.decode()
    assert not RateCardAssignment.objects.exists()


def test_the_assignment_form_saves_through_the_service(
    frozen_time: time_machine.Traveller, admin_client: Client, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})

    response = admin_client.post(
        "/admin/ratecards/ratecardassignment/add/",
        {"tenant": tenant.pk, "rate_card": card.pk, "mode": "follow", "notice_days": 30},
    )

    assert response.status_code == 302
    assignment = RateCardAssignment.objects.get()
    assert (assignment.tenant, assignment.mode, assignment.notice_days) == (tenant, "follow", 30)
