"""The vendor's admin: drafts, publishing with an effective date, the trap column."""

from datetime import UTC, datetime, timedelta

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


def test_the_assignment_list_shows_the_history_and_flags_only_the_row_in_force(
    frozen_time: time_machine.Traveller, admin_client: Client, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"}, effective_from=datetime(2026, 2, 1, tzinfo=UTC))
    old = ratecard_assign(tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1)
    frozen_time.shift(timedelta(days=1))
    ratecard_assign(tenant=tenant, rate_card=card, mode="follow")

    response = admin_client.get("/admin/ratecards/ratecardassignment/")
    page = response.content.decode()

    assert page.count('<th class="field-tenant nowrap">') == 2
    assert page.count('alt="True"') == 1  # only the follow row is in force
    assert "⚠" not in page  # the pinned row is history: no trap
    assert (
        admin_client.get(f"/admin/ratecards/ratecardassignment/{old.pk}/change/").status_code == 200
    )


def test_an_assignment_row_cannot_be_edited_or_deleted(
    frozen_time: time_machine.Traveller, admin_client: Client, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    row = ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)
    url = f"/admin/ratecards/ratecardassignment/{row.pk}"

    edited = admin_client.post(
        f"{url}/change/",
        {"tenant": tenant.pk, "rate_card": card.pk, "mode": "follow", "notice_days": 0},
    )
    deleted = admin_client.post(f"{url}/delete/", {"post": "yes"})

    assert (edited.status_code, deleted.status_code) == (403, 403)
    row.refresh_from_db()
    assert row.notice_days == 30


def test_the_assignment_form_adds_a_row_from_valid_from(
    frozen_time: time_machine.Traveller, admin_client: Client, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)
    form = {"tenant": tenant.pk, "rate_card": card.pk, "mode": "follow", "notice_days": 7}

    past = admin_client.post(
        "/admin/ratecards/ratecardassignment/add/", {**form, "valid_from": "2026-01-14 12:00"}
    )
    future = admin_client.post(
        "/admin/ratecards/ratecardassignment/add/", {**form, "valid_from": "2026-02-01 00:00"}
    )

    assert past.status_code == 200
    assert (
        "valid_from lies in the past; an assignment can only take effect from now on."
        in past.content.decode()
    )
    assert future.status_code == 302
    assert list(
        RateCardAssignment.objects.order_by("valid_from").values_list("notice_days", "valid_from")
    ) == [(30, datetime(2026, 1, 15, 12, tzinfo=UTC)), (7, datetime(2026, 2, 1, tzinfo=UTC))]
