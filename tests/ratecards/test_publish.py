"""Drafts, copying, publishing, the default card, assignments: the write rules."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, transaction

from ratecards.exceptions import (
    EffectiveFromInPast,
    EmptyVersion,
    InvalidAssignment,
    InvalidRate,
    PublishedVersionImmutable,
)
from ratecards.models import RateCard, RateCardAssignment
from ratecards.services import (
    multiplier_set,
    rate_set,
    ratecard_assign,
    ratecard_create,
    ratecard_set_default,
    ratecard_version_create_draft,
    ratecard_version_publish,
)
from tenants.models import Tenant
from tests.ratecards.factories import publish_version

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)


def _rates(version) -> list[tuple[str, str, Decimal, str]]:
    return list(version.rates.values_list("action", "model_class", "credits_per_unit", "charge_on"))


def test_publish_freezes_a_draft_with_its_dates(
    frozen_time: time_machine.Traveller, card: RateCard
) -> None:
    draft = ratecard_version_create_draft(rate_card=card)
    rate_set(version=draft, action="chat", credits_per_unit="1")
    effective = datetime(2026, 2, 1, tzinfo=UTC)

    version = ratecard_version_publish(version=draft, effective_from=effective)

    version.refresh_from_db()
    assert (version.number, version.status, version.effective_from, version.published_at) == (
        1,
        "published",
        effective,
        NOW,
    )


def test_publish_allows_a_few_minutes_of_grace_but_not_the_past(
    frozen_time: time_machine.Traveller, card: RateCard
) -> None:
    draft = ratecard_version_create_draft(rate_card=card)
    rate_set(version=draft, action="chat", credits_per_unit="1")

    with pytest.raises(EffectiveFromInPast) as caught:
        ratecard_version_publish(version=draft, effective_from=NOW - timedelta(minutes=6))
    ratecard_version_publish(version=draft, effective_from=NOW - timedelta(minutes=4))

    assert (caught.value.status_code, caught.value.code, caught.value.message) == (
        422,
        "effective_from_in_past",
        "effective_from lies in the past; a version can only take effect from now on.",
    )
    assert caught.value.details == {"field": "effective_from"}


def test_publish_refuses_an_already_published_version(
    frozen_time: time_machine.Traveller, card: RateCard
) -> None:
    version = publish_version(card, {"chat": "1"})

    with pytest.raises(PublishedVersionImmutable):
        ratecard_version_publish(version=version, effective_from=NOW)


def test_publish_refuses_an_empty_version(
    frozen_time: time_machine.Traveller, card: RateCard
) -> None:
    draft = ratecard_version_create_draft(rate_card=card)

    with pytest.raises(EmptyVersion) as caught:
        ratecard_version_publish(version=draft, effective_from=NOW)

    assert (caught.value.code, caught.value.message) == (
        "empty_version",
        "A version without rates cannot be published.",
    )


def test_a_new_draft_copies_the_latest_version(
    frozen_time: time_machine.Traveller, card: RateCard
) -> None:
    v1 = publish_version(
        card,
        {"chat": "1", "resolution": "50"},
        multipliers={"turbo": "6"},
        charge_on={"resolution": "success"},
    )
    publish_version(card, {"chat": "2"})

    draft = ratecard_version_create_draft(rate_card=card)
    from_v1 = ratecard_version_create_draft(rate_card=card, copy_from=v1)

    assert (draft.number, draft.status) == (3, "draft")
    assert _rates(draft) == [("chat", "", Decimal("2.0000"), "always")]
    assert from_v1.number == 4
    assert _rates(from_v1) == [
        ("chat", "", Decimal("1.0000"), "always"),
        ("resolution", "", Decimal("50.0000"), "success"),
    ]
    assert list(from_v1.multipliers.values_list("model_class", "multiplier")) == [
        ("turbo", Decimal("6.0000"))
    ]


def test_copy_from_another_card_is_refused(
    frozen_time: time_machine.Traveller, card: RateCard
) -> None:
    other = ratecard_create(name="Other", slug="other")
    foreign = publish_version(other, {"chat": "1"})

    with pytest.raises(InvalidRate, match="another rate card"):
        ratecard_version_create_draft(rate_card=card, copy_from=foreign)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"credits_per_unit": "-1"}, "credits_per_unit", "credits_per_unit may not be negative."),
        (
            {"credits_per_unit": "0.00015"},
            "credits_per_unit",
            "credits_per_unit has at most 4 decimal places.",
        ),
        (
            {"credits_per_unit": "abc"},
            "credits_per_unit",
            "credits_per_unit must be a decimal number.",
        ),
        ({"action": "two words"}, "action", "action must be a slug (letters, digits, _ and -)."),
        ({"charge_on": "never"}, "charge_on", "charge_on must be one of ['always', 'success']."),
    ],
)
def test_rate_set_validates(card: RateCard, kwargs: dict, field: str, message: str) -> None:
    draft = ratecard_version_create_draft(rate_card=card)

    with pytest.raises(InvalidRate) as caught:
        rate_set(version=draft, **{"action": "chat", "credits_per_unit": "1", **kwargs})

    assert (caught.value.message, caught.value.details) == (message, {"field": field})


def test_multiplier_must_be_positive(card: RateCard) -> None:
    draft = ratecard_version_create_draft(rate_card=card)

    with pytest.raises(InvalidRate, match="greater than 0"):
        multiplier_set(version=draft, model_class="turbo", multiplier="0")


def test_only_one_card_is_the_default(card: RateCard) -> None:
    enterprise = ratecard_create(name="Enterprise", slug="enterprise", is_default=True)
    ratecard_set_default(rate_card=card)

    assert list(RateCard.objects.filter(is_default=True)) == [card]
    enterprise.refresh_from_db()
    assert not enterprise.is_default
    with pytest.raises(IntegrityError), transaction.atomic():
        RateCard.objects.create(name="Rogue", slug="rogue", is_default=True)


def test_assign_keeps_the_earlier_terms(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)
    frozen_time.shift(timedelta(days=1))

    assignment = ratecard_assign(
        tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1, pinned_until=NOW
    )

    assert list(
        RateCardAssignment.objects.filter(tenant=tenant)
        .order_by("valid_from")
        .values_list("mode", "notice_days", "valid_from")
    ) == [("follow", 30, NOW), ("pinned", 0, NOW + timedelta(days=1))]
    assert (assignment.mode, assignment.notice_days, assignment.pinned_version) == ("pinned", 0, v1)


def test_assign_validates(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    draft = ratecard_version_create_draft(rate_card=card)
    other = ratecard_create(name="Other", slug="other")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"mode": "sometimes"}, "mode"),
        ({"mode": "follow", "notice_days": -1}, "notice_days"),
        ({"mode": "follow", "pinned_version": v1}, "pinned_version"),
        ({"mode": "pinned"}, "pinned_version"),
        ({"mode": "pinned", "pinned_version": draft}, "pinned_version"),
        ({"mode": "pinned", "pinned_version": v1, "notice_days": 30}, "notice_days"),
        ({"mode": "pinned", "pinned_version": v1, "rate_card": other}, "pinned_version"),
        (
            {"mode": "pinned", "pinned_version": v1, "pinned_until": datetime(2026, 3, 1)},
            "pinned_until",
        ),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidAssignment) as caught:
            ratecard_assign(**{"tenant": tenant, "rate_card": card, **kwargs})
        assert (caught.value.code, caught.value.details) == ("invalid_assignment", {"field": field})
    assert not RateCardAssignment.objects.exists()
