"""Assignment history: an event is priced under the card the tenant was on when it occurred.

The timeline of `history` (time frozen, moved forward to each step):
- Nov 1: standard (the default card) v1, chat 1; enterprise e1, chat 0.5.
- Dec 15: the tenant moves to enterprise (follow).
- Jan 1: standard v2, chat 2.
- Jan 10: the tenant moves back to standard, pinned to v1 (a contract).
- now: Jan 15 12:00.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from metering.services import UsageInput, usage_event_record_batch
from ratecards.exceptions import InvalidAssignment
from ratecards.models import RateCard, RateCardAssignment, RateCardVersion
from ratecards.selectors import (
    ScheduledVersion,
    TrapInfo,
    assignment_or_default,
    price,
    rate_card_trap,
    scheduled_versions,
    tenant_pricer,
)
from ratecards.services import ratecard_assign, ratecard_create
from tenants.models import Tenant
from tests.metering.factories import fund
from tests.ratecards.factories import publish_version

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2025, 11, 1, tzinfo=UTC)
DEC_15 = datetime(2025, 12, 15, tzinfo=UTC)
JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
JAN_10 = datetime(2026, 1, 10, tzinfo=UTC)
NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)


@dataclass(frozen=True)
class History:
    standard: RateCard
    enterprise: RateCard
    v1: RateCardVersion
    v2: RateCardVersion
    e1: RateCardVersion


@pytest.fixture
def history(frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard) -> History:
    frozen_time.move_to(NOV_1)
    v1 = publish_version(card, {"chat": "1"})
    enterprise = ratecard_create(name="Enterprise", slug="enterprise")
    e1 = publish_version(enterprise, {"chat": "0.5"})
    frozen_time.move_to(DEC_15)
    ratecard_assign(tenant=tenant, rate_card=enterprise, mode="follow")
    frozen_time.move_to(JAN_1)
    v2 = publish_version(card, {"chat": "2"})
    frozen_time.move_to(JAN_10)
    ratecard_assign(tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1)
    frozen_time.move_to(NOW)
    return History(standard=card, enterprise=enterprise, v1=v1, v2=v2, e1=e1)


def _quote(tenant: Tenant, at: datetime) -> tuple[RateCardVersion, Decimal]:
    quote = price(tenant=tenant, action="chat", model_class="", quantity=10, at=at)
    return quote.version, quote.credits


def test_an_event_before_a_plan_change_is_priced_by_the_old_cards_version(
    history: History, tenant: Tenant
) -> None:
    assert _quote(tenant, JAN_10 - timedelta(microseconds=1)) == (history.e1, Decimal("5.0000"))
    assert _quote(tenant, DEC_15) == (history.e1, Decimal("5.0000"))


def test_an_event_after_a_plan_change_is_priced_by_the_new_terms(
    history: History, tenant: Tenant, other_tenant: Tenant
) -> None:
    # Pinned to v1 from Jan 10, although standard v2 is in force for everyone else.
    assert _quote(tenant, JAN_10) == (history.v1, Decimal("10.0000"))
    assert _quote(other_tenant, JAN_10) == (history.v2, Decimal("20.0000"))


def test_an_event_before_the_first_assignment_is_priced_by_the_default_card(
    history: History, tenant: Tenant
) -> None:
    assert _quote(tenant, DEC_15 - timedelta(microseconds=1)) == (history.v1, Decimal("10.0000"))


def test_a_batch_spanning_the_changes_prices_each_event_from_the_cache(
    history: History, tenant: Tenant, django_assert_num_queries
) -> None:
    moments = [DEC_15 - timedelta(days=1), DEC_15, JAN_1, JAN_10, NOW] * 40
    tenant_pricer(tenant=tenant).price(action="chat", model_class="", quantity=1, at=NOW)
    tenant_pricer(tenant=tenant).price(action="chat", model_class="", quantity=1, at=DEC_15)

    with django_assert_num_queries(1):  # the config stamp; the pricer is cached
        pricer = tenant_pricer(tenant=tenant)
        quotes = [pricer.price(action="chat", model_class="", quantity=1, at=at) for at in moments]

    assert [(q.version, q.credits) for q in quotes[:5]] == [
        (history.v1, Decimal("1.0000")),  # before any assignment: the default card
        (history.e1, Decimal("0.5000")),
        (history.e1, Decimal("0.5000")),
        (history.v1, Decimal("1.0000")),  # pinned, though v2 is out
        (history.v1, Decimal("1.0000")),
    ]
    assert [(q.version, q.credits) for q in quotes] == [
        (q.version, q.credits) for q in quotes[:5]
    ] * 40


def test_usage_ingestion_prices_backdated_events_by_the_assignment_then(
    history: History, tenant: Tenant
) -> None:
    fund(tenant, 100)
    moments = [DEC_15 - timedelta(days=1), DEC_15 + timedelta(days=1), JAN_10, NOW]
    items = [
        UsageInput(idempotency_key=f"evt-{i}", action="chat", quantity=Decimal(4), occurred_at=at)
        for i, at in enumerate(moments)
    ]

    results = usage_event_record_batch(tenant=tenant, items=items)

    assert [r.status for r in results] == [201, 201, 201, 201]
    assert [(r.event.rate_card_version, r.event.credits) for r in results if r.event] == [
        (history.v1, Decimal("4.0000")),
        (history.e1, Decimal("2.0000")),
        (history.v1, Decimal("4.0000")),
        (history.v1, Decimal("4.0000")),
    ]


def test_a_batch_costs_the_same_queries_for_4_or_40_events_across_the_changes(
    history: History, tenant: Tenant
) -> None:
    fund(tenant, 1000)
    moments = [DEC_15 - timedelta(days=1), DEC_15 + timedelta(days=1), JAN_10, NOW]

    def batch(prefix: str, repeat: int) -> int:
        items = [
            UsageInput(
                idempotency_key=f"{prefix}-{i}", action="chat", quantity=Decimal(1), occurred_at=at
            )
            for i, at in enumerate(moments * repeat)
        ]
        with CaptureQueriesContext(connection) as queries:
            results = usage_event_record_batch(tenant=tenant, items=items)
        assert {r.status for r in results} == {201}
        return len(queries)

    batch("warm", 1)  # caches the three versions' rates

    assert batch("four", 1) == batch("forty", 10)


def test_assigning_adds_to_the_history(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    first = ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)
    frozen_time.shift(timedelta(days=1))

    second = ratecard_assign(tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1)

    rows = list(RateCardAssignment.objects.filter(tenant=tenant).order_by("valid_from"))
    assert [(a.pk, a.valid_from, a.mode, a.notice_days) for a in rows] == [
        (first.pk, NOW, "follow", 30),
        (second.pk, NOW + timedelta(days=1), "pinned", 0),
    ]
    assert assignment_or_default(tenant=tenant) == second


def test_assigning_the_terms_in_force_adds_nothing(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    first = ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)
    frozen_time.shift(timedelta(hours=1))

    again = ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)

    assert again == first
    assert RateCardAssignment.objects.filter(tenant=tenant).count() == 1


def test_a_second_assignment_at_the_same_instant_replaces_the_first(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    first = ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)

    second = ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=7)

    assert second.pk == first.pk
    stored = RateCardAssignment.objects.get(tenant=tenant)
    assert (stored.valid_from, stored.notice_days) == (NOW, 7)


def test_a_future_assignment_applies_from_its_valid_from(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    enterprise = ratecard_create(name="Enterprise", slug="enterprise")
    e1 = publish_version(enterprise, {"chat": "0.5"})
    ratecard_assign(tenant=tenant, rate_card=card, mode="follow")

    ratecard_assign(
        tenant=tenant, rate_card=enterprise, mode="follow", valid_from=JAN_10 + timedelta(days=21)
    )

    assert assignment_or_default(tenant=tenant).rate_card == card
    assert _quote(tenant, NOW)[0] == v1
    assert _quote(tenant, datetime(2026, 1, 31, tzinfo=UTC))[0] == e1
    assert scheduled_versions(tenant=tenant, now=NOW) == [
        ScheduledVersion(version=e1, applies_from=datetime(2026, 1, 31, tzinfo=UTC))
    ]


def test_an_assignment_cannot_start_in_the_past(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    cases = [
        (
            NOW - timedelta(minutes=6),
            "valid_from lies in the past; an assignment can only take effect from now on.",
        ),
        (datetime(2026, 2, 1), "valid_from must carry a time zone."),
    ]
    for valid_from, message in cases:
        with pytest.raises(InvalidAssignment) as caught:
            ratecard_assign(tenant=tenant, rate_card=card, mode="follow", valid_from=valid_from)
        assert (caught.value.message, caught.value.details) == (message, {"field": "valid_from"})
    assert not RateCardAssignment.objects.exists()
    # Within the publish grace (an admin clicking "now") is fine.
    ratecard_assign(
        tenant=tenant, rate_card=card, mode="follow", valid_from=NOW - timedelta(minutes=4)
    )


def test_the_trap_and_the_api_answer_for_now(
    history: History, tenant: Tenant, api_client: APIClient
) -> None:
    assert rate_card_trap(tenant=tenant) == TrapInfo(
        pinned_number=1,
        pinned_until=None,
        newer_count=1,
        newest_number=2,
        newest_effective_from=JAN_1,
    )

    response = api_client.get("/api/v1/rate-card")

    assert response.status_code == 200
    body = response.json()
    assert (body["rate_card"]["slug"], body["version"]["number"], body["assignment"]["mode"]) == (
        "standard",
        1,
        "pinned",
    )
