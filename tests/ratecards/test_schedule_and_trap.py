"""What comes next for a tenant (scheduled versions) and the rate card trap."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from ratecards.models import RateCard
from ratecards.selectors import TrapInfo, rate_card_trap, scheduled_versions
from ratecards.services import ratecard_assign, ratecard_version_create_draft
from tenants.models import Tenant
from tests.ratecards.factories import publish_version

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2026, 3, 1, tzinfo=UTC)


def _schedule(tenant: Tenant, now: datetime = NOW) -> list[tuple[int, datetime]]:
    return [(s.version.number, s.applies_from) for s in scheduled_versions(tenant=tenant, now=now)]


def test_scheduled_for_a_follower_without_notice(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"}, effective_from=FEB_1)
    publish_version(card, {"chat": "3"}, effective_from=MAR_1)

    assert _schedule(tenant) == [(2, FEB_1), (3, MAR_1)]
    assert _schedule(tenant, now=FEB_1) == [(3, MAR_1)]
    assert _schedule(tenant, now=MAR_1) == []


def test_notice_days_delay_when_a_version_applies(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"}, effective_from=FEB_1)  # published Jan 15 12:00
    ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)

    assert _schedule(tenant) == [(2, datetime(2026, 2, 14, 12, tzinfo=UTC))]


def test_a_version_overtaken_before_it_applies_is_not_scheduled(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"}, effective_from=MAR_1)
    publish_version(card, {"chat": "3"}, effective_from=FEB_1)  # newer, and sooner

    assert _schedule(tenant) == [(3, FEB_1)]


def test_pinned_until_a_date_then_the_newest_applies(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"})
    publish_version(card, {"chat": "3"}, effective_from=FEB_1)
    publish_version(card, {"chat": "4"}, effective_from=MAR_1 + timedelta(days=10))
    ratecard_assign(
        tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1, pinned_until=MAR_1
    )

    assert _schedule(tenant) == [(3, MAR_1), (4, MAR_1 + timedelta(days=10))]


def test_pinned_for_ever_has_nothing_scheduled(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"}, effective_from=FEB_1)
    ratecard_assign(tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1)

    assert _schedule(tenant) == []


def test_the_trap_pinned_to_a_version_with_newer_ones(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"})
    publish_version(card, {"chat": "3"}, effective_from=FEB_1)
    ratecard_version_create_draft(rate_card=card)  # drafts do not count
    ratecard_assign(
        tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1, pinned_until=MAR_1
    )

    assert rate_card_trap(tenant=tenant) == TrapInfo(
        pinned_number=1,
        pinned_until=MAR_1,
        newer_count=2,
        newest_number=3,
        newest_effective_from=FEB_1,
    )


def test_no_trap_when_following_or_pinned_to_the_newest(
    frozen_time: time_machine.Traveller, tenant: Tenant, other_tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    v2 = publish_version(card, {"chat": "2"})
    ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)
    ratecard_assign(tenant=other_tenant, rate_card=card, mode="pinned", pinned_version=v2)

    assert rate_card_trap(tenant=tenant) is None
    assert rate_card_trap(tenant=other_tenant) is None
