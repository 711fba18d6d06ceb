"""The pricing caches: a tenant's assignment history and published versions, held per process
under the config stamp. Warm pricing costs no query but the stamp; a version that takes effect
later prices from its effective_from exactly with no bump; publishing and assigning reach this
process and another one at their next request."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from ratecards.models import RateCard
from ratecards.selectors import _pricers, cost_catalog_in_force, cost_quote, price, tenant_pricer
from ratecards.services import (
    cost_catalog_version_create_draft,
    cost_catalog_version_publish,
    cost_price_set,
    ratecard_assign,
    ratecard_create,
    ratecard_set_default,
)
from tenants.cache import config_stamp_read
from tenants.models import Tenant
from tenants.services import api_key_create, tenant_create
from tests.ratecards.factories import publish_version
from tests.tenants.stamp_worker import StampWorker

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
STAMP_SQL = "SELECT value FROM tenants_configstamp WHERE id = 1"


def _chat(tenant: Tenant, at: datetime, stamp: int | None = None) -> tuple[int, Decimal]:
    quote = price(tenant=tenant, action="chat", model_class=None, quantity=1, at=at, stamp=stamp)
    return quote.version.number, quote.credits


def _api_client(tenant: Tenant) -> APIClient:
    client = APIClient()
    key = api_key_create(tenant=tenant, name="k").plaintext
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def _catalog(cents: str, effective_from: datetime) -> None:
    version = cost_catalog_version_create_draft(currency="USD")
    cost_price_set(version=version, component="tool_calls", price_minor=cents)
    cost_catalog_version_publish(version=version, effective_from=effective_from)


@pytest.mark.django_db
def test_warm_pricing_costs_the_stamp_only_and_nothing_with_a_stamp_in_hand(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    _chat(tenant, NOW)

    with CaptureQueriesContext(connection) as warm:
        assert _chat(tenant, NOW) == (1, Decimal("1.0000"))
    stamp = config_stamp_read()
    with CaptureQueriesContext(connection) as in_hand:
        assert _chat(tenant, NOW, stamp=stamp) == (1, Decimal("1.0000"))

    assert [q["sql"] for q in warm.captured_queries] == [STAMP_SQL]
    assert in_hand.captured_queries == []


@pytest.mark.django_db
def test_a_warm_rate_card_request_costs_one_query_which_pricing_shares(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    client = _api_client(tenant)
    assert client.get("/api/v1/rate-card").status_code == 200

    with CaptureQueriesContext(connection) as warm:
        response = client.get("/api/v1/rate-card")

    assert response.json()["version"]["number"] == 1
    assert [q["sql"] for q in warm.captured_queries] == [STAMP_SQL]


@pytest.mark.django_db
def test_a_future_version_prices_from_its_effective_from_exactly_without_a_bump(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"}, effective_from=LATER)
    stamp = config_stamp_read()
    _chat(tenant, NOW, stamp)  # warm

    with CaptureQueriesContext(connection) as queries:
        just_before = _chat(tenant, LATER - timedelta(microseconds=1), stamp)
        at_the_instant = _chat(tenant, LATER, stamp)
    frozen_time.move_to(LATER)
    with CaptureQueriesContext(connection) as later:
        now_priced = _chat(tenant, timezone.now())

    assert just_before == (1, Decimal("1.0000"))
    assert at_the_instant == (2, Decimal("2.0000"))
    assert now_priced == (2, Decimal("2.0000"))
    assert queries.captured_queries == []
    assert [q["sql"] for q in later.captured_queries] == [STAMP_SQL]
    assert config_stamp_read() == stamp


@pytest.mark.django_db
def test_a_backdated_event_is_priced_by_the_version_in_force_at_its_time(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"}, effective_from=LATER)
    frozen_time.move_to(LATER + timedelta(hours=1))
    _chat(tenant, timezone.now())  # warm, under v2

    assert _chat(tenant, LATER - timedelta(minutes=30)) == (1, Decimal("1.0000"))
    assert _chat(tenant, LATER + timedelta(minutes=30)) == (2, Decimal("2.0000"))


@pytest.mark.django_db
def test_publishing_reaches_a_warm_pricer(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    assert _chat(tenant, NOW) == (1, Decimal("1.0000"))
    stamp = config_stamp_read()

    publish_version(card, {"chat": "3"})

    assert config_stamp_read() != stamp
    assert _chat(tenant, NOW) == (2, Decimal("3.0000"))


@pytest.mark.django_db
def test_assigning_a_card_reaches_a_warm_pricer(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    gold = ratecard_create(name="Gold", slug="gold")
    publish_version(gold, {"chat": "5"})
    assert _chat(tenant, NOW) == (1, Decimal("1.0000"))

    ratecard_assign(tenant=tenant, rate_card=gold, mode="follow")

    assert _chat(tenant, NOW) == (1, Decimal("5.0000"))


@pytest.mark.django_db
def test_a_new_default_card_reaches_a_warm_pricer(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    gold = ratecard_create(name="Gold", slug="gold")
    publish_version(gold, {"chat": "5"})
    assert _chat(tenant, NOW) == (1, Decimal("1.0000"))

    ratecard_set_default(rate_card=gold)

    assert _chat(tenant, NOW) == (1, Decimal("5.0000"))


@pytest.mark.django_db
def test_the_cost_catalog_timeline_switches_at_effective_from_and_on_publish(
    frozen_time: time_machine.Traveller,
) -> None:
    _catalog("8", NOW)
    _catalog("9", LATER)
    stamp = config_stamp_read()
    cost_quote(components={"tool_calls": 1}, model_class="", at=LATER, stamp=stamp)
    cost_quote(components={"tool_calls": 1}, model_class="", at=NOW, stamp=stamp)

    with CaptureQueriesContext(connection) as queries:
        before = cost_quote(
            components={"tool_calls": 1}, model_class="", at=LATER - timedelta(seconds=1)
        )
        after = cost_quote(components={"tool_calls": 1}, model_class="", at=LATER, stamp=stamp)
    frozen_time.move_to(LATER + timedelta(hours=1))
    _catalog("10", timezone.now())

    assert (before.version.number, before.total_minor) == (1, Decimal(8))
    assert (after.version.number, after.total_minor) == (2, Decimal(9))
    assert [q["sql"] for q in queries.captured_queries] == [STAMP_SQL]
    assert cost_catalog_in_force(at=timezone.now()).number == 3
    assert cost_catalog_in_force(at=LATER).number == 2  # back-dated


@pytest.mark.django_db
def test_the_pricer_cache_is_keyed_by_tenant_id(
    frozen_time: time_machine.Traveller, tenant: Tenant, other_tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    tenant_pricer(tenant=tenant)
    tenant_pricer(tenant=other_tenant)
    tenant_pricer(tenant=None)

    assert sorted(_pricers.keys(), key=str) == sorted([tenant.pk, other_tenant.pk, None], key=str)


# Another process (real time: the worker's clock is not frozen)


def _db_name() -> str:
    return str(connection.settings_dict["NAME"])


@pytest.mark.django_db(transaction=True)
def test_publishing_reaches_another_worker_at_its_next_request() -> None:
    card = ratecard_create(name="Standard", slug="standard", is_default=True)
    publish_version(card, {"chat": "1"})
    tenant = tenant_create(name="Worker", slug="worker")
    key = api_key_create(tenant=tenant, name="k").plaintext
    with StampWorker(_db_name()) as worker:
        worker.price(tenant.pk, "chat")
        warm = worker.price(tenant.pk, "chat")
        worker.get("/api/v1/rate-card", key)
        warm_api = worker.get("/api/v1/rate-card", key)

        publish_version(card, {"chat": "2"})
        priced = worker.price(tenant.pk, "chat")
        shown = worker.get("/api/v1/rate-card", key)

    assert (warm["version"], warm["credits"], warm["queries"]) == (1, "1.0000", 1)
    assert (warm_api["body"]["version"]["number"], warm_api["queries"]) == (1, 1)
    assert (priced["version"], priced["credits"]) == (2, "2.0000")
    assert shown["body"]["version"]["number"] == 2
    assert [r["credits_per_unit"] for r in shown["body"]["rates"]] == ["2.0000"]


@pytest.mark.django_db(transaction=True)
def test_assigning_a_card_reaches_another_worker_at_its_next_request() -> None:
    card = ratecard_create(name="Standard", slug="standard", is_default=True)
    publish_version(card, {"chat": "1"})
    gold = ratecard_create(name="Gold", slug="gold")
    publish_version(gold, {"chat": "5"})
    tenant = tenant_create(name="Worker", slug="worker")
    with StampWorker(_db_name()) as worker:
        worker.price(tenant.pk, "chat")
        assert worker.price(tenant.pk, "chat")["queries"] == 1

        ratecard_assign(tenant=tenant, rate_card=gold, mode="follow")
        priced = worker.price(tenant.pk, "chat")

    assert (priced["version"], priced["credits"]) == (1, "5.0000")


@pytest.mark.django_db(transaction=True)
def test_a_published_cost_catalog_reaches_another_worker_at_its_next_request() -> None:
    _catalog("8", timezone.now())
    with StampWorker(_db_name()) as worker:
        worker.cost_catalog()
        warm = worker.cost_catalog()

        _catalog("9", timezone.now())
        after = worker.cost_catalog()

    assert (warm["number"], warm["queries"]) == (1, 1)
    assert after["number"] == 2
