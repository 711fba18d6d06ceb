"""The rate-card trap read in groups of equal price inputs is exactly the events re-priced one
by one (what insights/trap.py did before, and what the ledger would have debited), where
pricing a rollup's summed quantity is not: each event's charge is rounded on its own."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.models import Contract
from insights.models import StoredTrap
from insights.tasks import insights_contract_traps_store_task
from insights.trap import DAYS, contract_trap, contract_traps, contract_traps_store
from metering.selectors import usage_event_recorded_list
from metering.services import UsageInput, usage_event_record
from metering.usage.pricing import credits_charged
from ratecards.exceptions import UnknownAction, UnknownModelClass
from ratecards.models import RateCard, RateCardVersion
from ratecards.selectors import version_quoter
from ratecards.services import (
    multiplier_set,
    rate_delete,
    rate_set,
    ratecard_seed_example,
    ratecard_version_create_draft,
    ratecard_version_publish,
)
from tenants.models import Tenant
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db
D = Decimal
NOW = datetime(2026, 4, 10, tzinfo=UTC)


def _pinned(tenant: Tenant, card: RateCard, v1: RateCardVersion) -> Contract:
    return Contract.objects.create(
        tenant=tenant,
        name=f"{tenant.slug} 2026",
        status=Contract.Status.ACTIVE,
        price_per_1000_minor=8000,
        committed_credits=D(10000),
        start_at=datetime(2026, 3, 1, tzinfo=UTC),
        end_at=datetime(2027, 3, 1, tzinfo=UTC),
        rate_card=card,
        rate_card_mode=Contract.RateCardMode.PINNED,
        pinned_version=v1,
        pinned_until=datetime(2026, 9, 1, tzinfo=UTC),
    )


def _record(
    tenant: Tenant,
    key: str,
    action: str,
    quantity: str,
    model_class: str = "",
    outcome: str = "success",
) -> None:
    data = UsageInput(
        idempotency_key=key,
        action=action,
        quantity=D(quantity),
        model_class=model_class,
        outcome=outcome,
    )
    usage_event_record(tenant=tenant, data=data)


@pytest.fixture
def trapped(tenant: Tenant, other_tenant: Tenant) -> tuple[Contract, Contract]:
    """v1 (the example card: chat 1, web_research 10, resolution 50 on success, turbo x6);
    v2 from Mar 25: chat 1.5, resolution 33.3333 on success, turbo x6.5, no web_research.
    Acme's events of the 30 days: 7 chats of 0.0001 (v2: 0.00015 each, 0.0002 rounded), 3 of
    0.0003 (0.00045, 0.0005), 2 turbo chats of 0.0001 (0.000975, 0.0010), 2 resolutions that
    succeeded and 3 that failed (free), a web research v2 no longer prices; one chat before the
    30 days. Globex: 4 chats of 0.0001."""
    with time_machine.travel("2026-03-01 00:00:00+00:00", tick=False):
        card = ratecard_seed_example()
        v1 = card.versions.get(number=1)
        fund(tenant, 1000)
        fund(other_tenant, 1000, reference="g")
        acme, globex = _pinned(tenant, card, v1), _pinned(other_tenant, card, v1)
    with time_machine.travel("2026-03-05 12:00:00+00:00", tick=False):
        _record(tenant, "old", "chat", "5")
    with time_machine.travel("2026-03-15 12:00:00+00:00", tick=False):
        for i in range(7):
            _record(tenant, f"c{i}", "chat", "0.0001")
        for i in range(3):
            _record(tenant, f"d{i}", "chat", "0.0003")
        for i in range(2):
            _record(tenant, f"t{i}", "chat", "0.0001", model_class="turbo")
        for i in range(2):
            _record(tenant, f"r{i}", "resolution", "1")
        for i in range(3):
            _record(tenant, f"f{i}", "resolution", "1", outcome="failure")
        _record(tenant, "w", "web_research", "2")
        for i in range(4):
            _record(other_tenant, f"g{i}", "chat", "0.0001")
    with time_machine.travel("2026-03-25 00:00:00+00:00", tick=False):
        v2 = ratecard_version_create_draft(rate_card=card, copy_from=v1)
        rate_set(version=v2, action="chat", credits_per_unit="1.5")
        rate_set(version=v2, action="resolution", credits_per_unit="33.3333", charge_on="success")
        rate_delete(version=v2, action="web_research")
        multiplier_set(version=v2, model_class="turbo", multiplier="6.5")
        ratecard_version_publish(version=v2, effective_from=v2.created_at)
    return acme, globex


def _one_by_one(contract: Contract) -> tuple[int, Decimal, Decimal, int]:
    """The trap as insights/trap.py computed it before: every event re-priced on its own."""
    current = contract.rate_card.versions.get(number=2)
    quoter = version_quoter(version=current)
    events = unpriced = 0
    charged = under = D("0.0000")
    for event in usage_event_recorded_list(
        tenant=contract.tenant,
        since=NOW - timedelta(days=DAYS),
        until=NOW,
        rate_card_id=contract.rate_card_id,
    ):
        events += 1
        charged += event.credits
        try:
            quote = quoter.price(
                action=event.action, model_class=event.model_class, quantity=event.quantity
            )
        except (UnknownAction, UnknownModelClass):
            unpriced += 1
            continue
        under += credits_charged(quote=quote, outcome=event.outcome)
    return events, charged, under, unpriced


def test_grouped_repricing_equals_the_events_one_by_one(
    trapped: tuple[Contract, Contract],
) -> None:
    acme, globex = trapped

    traps = contract_traps(contracts=[acme, globex], now=NOW)

    figures = {
        c.tenant.slug: (t.events, t.charged, t.under_current, t.unpriced)
        for c in (acme, globex)
        if (t := traps[c.pk])
    }
    assert figures == {"acme": _one_by_one(acme), "globex": _one_by_one(globex)}
    # By hand: charged under v1 0.0007 + 0.0009 + 0.0012 + 100 + 20; under v2 7 x 0.0002 +
    # 3 x 0.0005 + 2 x 0.0010 + 2 x 33.3333 (the web research left out, unpriced).
    assert figures == {
        "acme": (18, D("120.0028"), D("66.6715"), 1),
        "globex": (4, D("0.0004"), D("0.0008"), 0),
    }
    assert (traps[acme.pk].difference, traps[acme.pk].difference_minor) == (D("-53.3313"), -427)
    assert contract_trap(contract=acme, now=NOW) == traps[acme.pk]


def test_pricing_a_summed_quantity_would_not_be_exact(
    trapped: tuple[Contract, Contract],
) -> None:
    """Why the trap does not read the daily usage rollup: its 7 chats of 0.0001 priced as one
    quantity of 0.0007 under v2 are 0.0011 credits (0.00105 rounded), not 7 x 0.0002."""
    acme, _ = trapped
    quoter = version_quoter(version=acme.rate_card.versions.get(number=2))

    summed = quoter.price(action="chat", model_class="", quantity=D("0.0007")).credits
    each = quoter.price(action="chat", model_class="", quantity=D("0.0001")).credits

    assert (summed, 7 * each) == (D("0.0011"), D("0.0014"))


def test_every_trap_in_a_fixed_number_of_statements(
    trapped: tuple[Contract, Contract],
) -> None:
    acme, globex = trapped
    contract_traps(contracts=[acme], now=NOW)  # the version's rates cached, as in a warm page
    with CaptureQueriesContext(connection) as one:
        contract_traps(contracts=[acme], now=NOW)
    with CaptureQueriesContext(connection) as two:
        contract_traps(contracts=[acme, globex], now=NOW)

    assert len(one) == len(two) == 2  # the cards' versions, the grouped events


def test_the_hourly_job_stores_the_traps_the_contracts_page_lists(
    trapped: tuple[Contract, Contract], settings: Any
) -> None:
    acme, globex = trapped
    assert settings.CELERY_BEAT_SCHEDULE["insights.contract_traps_store"] == {
        "task": "insights.contract_traps_store",
        "schedule": 3600.0,
    }
    staff = Client()
    staff.force_login(User.objects.create_user("vendor", is_staff=True))
    with time_machine.travel(NOW, tick=False):
        assert insights_contract_traps_store_task.apply().get() == 2
        with CaptureQueriesContext(connection) as queries:
            page = staff.get("/console/contracts/")

    assert {(t.contract.pk, t.events, t.under_current) for t in page.context["traps"]} == {
        (acme.pk, 18, D("66.6715")),
        (globex.pk, 4, D("0.0008")),
    }
    assert not [q for q in queries.captured_queries if "metering_usageevent" in q["sql"]]
    # Globex follows its card from now on: the next run drops its row, and until then the
    # page leaves out a figure whose pin is gone.
    Contract.objects.filter(pk=globex.pk).update(
        rate_card_mode=Contract.RateCardMode.FOLLOW, pinned_version=None, pinned_until=None
    )
    with time_machine.travel(NOW, tick=False):
        assert [t.contract.pk for t in staff.get("/console/contracts/").context["traps"]] == [
            acme.pk
        ]
        assert contract_traps_store(now=NOW) == 1
    assert list(StoredTrap.objects.values_list("contract_id", flat=True)) == [acme.pk]
