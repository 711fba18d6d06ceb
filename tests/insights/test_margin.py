"""The console's money rollups and the margin read from them, against the real database:
revenue is what the credits spent were paid for (free credits earn 0), refunds take their
revenue back on their day, events without cost components are "cost unknown", exact to the
unrounded minor unit; the reference example 1,000 credits at $10.00 per 1,000 with COGS $3.01
is a 69.9 % gross margin."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.management import call_command

from insights.models import MarginDay
from insights.rollup import insights_rollup_backfill, insights_rollup_update
from insights.selectors import margin_list
from ledger.models import CreditBucket
from ledger.selectors import transaction_get
from ledger.services import ledger_reverse
from metering.services import UsageInput, usage_event_record
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db

D = Decimal

JAN14, JAN15 = date(2026, 1, 14), date(2026, 1, 15)


def record(tenant: Tenant, key: str, action: str, quantity: str = "1", **fields: Any) -> None:
    data = UsageInput(idempotency_key=key, action=action, quantity=D(quantity), **fields)
    usage_event_record(tenant=tenant, data=data)


def _row(rows: list[Any], key: object) -> Any:
    (found,) = [r for r in rows if r.key == key]
    return found


@pytest.fixture
def reference(tenant: Tenant, frozen_time: time_machine.Traveller) -> Tenant:
    """1,000 credits bought at $10.00 per 1,000 (cost basis 1 cent a credit), spent on 1,000
    chats whose 1,204,000 input tokens cost $3.01 at $2.50 per 1M."""
    ratecard_seed_example()
    fund(tenant, 1000, price_minor=1000)
    record(tenant, "run", "chat", "1000", input_tokens=1_204_000)
    return tenant


def test_the_reference_run_is_a_69_9_percent_gross_margin(reference: Tenant) -> None:
    insights_rollup_update()

    (chat,) = margin_list(start=JAN15, end=JAN15, by="action")
    assert (chat.key, chat.currency, chat.cogs_currency) == ("chat", "USD", "USD")
    assert (chat.events, chat.quantity, chat.credits) == (1, D("1000"), D("1000"))
    assert chat.revenue_minor == D("1000.00000000")
    assert chat.cogs_minor == D("301.00000000")
    assert chat.margin == D("0.699")
    assert chat.margin_percent == D("69.9")
    assert not chat.cost_unknown


@pytest.fixture
def mixed(tenant: Tenant, frozen_time: time_machine.Traveller) -> Tenant:
    """Jan 14: 100 free promotion credits and 1,000 paid at $20.00 (2 cents a credit).
    A doc search x10 (30 credits, no cost components: from the free bucket), a chat x100 with
    400,000 input tokens ($1.00; 70 free + 30 paid credits), a turbo web research (60 credits,
    2 tool calls, $0.16; paid).
    Jan 15: 20 of the web research's 60 credits refunded."""
    frozen_time.move_to("2026-01-14 10:00:00+00:00")
    ratecard_seed_example()
    fund(tenant, 100, reference="promo", source=CreditBucket.Source.PROMOTION)
    fund(tenant, 1000, price_minor=2000, reference="pack")
    record(tenant, "e1", "doc_search", "10")
    record(tenant, "e2", "chat", "100", input_tokens=400_000)
    record(tenant, "e3", "web_research", model_class="turbo", tool_calls=2)
    frozen_time.move_to("2026-01-15 12:00:00+00:00")
    debit = transaction_get(tenant=tenant, idempotency_key="usage:e3")
    assert debit is not None
    ledger_reverse(tenant=tenant, debit=debit, idempotency_key="refund-e3", amount=D("20"))
    return tenant


def test_free_credits_earn_nothing_and_a_refund_takes_its_revenue_back(mixed: Tenant) -> None:
    insights_rollup_update()

    by_action = margin_list(start=JAN14, end=JAN15, by="action")
    chat = _row(by_action, "chat")
    assert (chat.credits, chat.revenue_minor, chat.cogs_minor) == (
        D("100"),
        D("60.00000000"),  # 30 paid credits x 2 cents; the 70 free ones earn 0
        D("100.00000000"),
    )
    assert chat.margin_percent == D("-66.7")
    assert chat.negative
    web = _row(by_action, "web_research")
    assert (web.credits, web.revenue_minor, web.cogs_minor) == (
        D("40"),
        D("80.00000000"),  # 60 x 2 cents, less 20 x 2 cents refunded
        D("16.00000000"),
    )
    assert web.margin_percent == D("80.0")


def test_an_event_without_cost_components_is_cost_unknown_not_free(mixed: Tenant) -> None:
    insights_rollup_update()

    doc = _row(margin_list(start=JAN14, end=JAN15, by="action"), "doc_search")
    assert (doc.events, doc.events_without_cost, doc.credits_without_cost) == (1, 1, D("30"))
    assert doc.cost_unknown
    assert doc.margin is None  # no revenue of known cost: no margin, never 100 %
    (day,) = margin_list(start=JAN14, end=JAN14, by="day")
    assert (day.events, day.events_without_cost) == (3, 1)
    # The day's margin is over the chat and the web research only: (180 - 116) / 180.
    assert day.revenue_known_minor == D("180.00000000")
    assert day.cogs_minor == D("116.00000000")
    assert day.margin_percent == D("35.6")


def test_the_refund_lands_on_its_own_day(mixed: Tenant) -> None:
    insights_rollup_update()

    jan15 = margin_list(start=JAN15, end=JAN15, by="action")
    web = _row(jan15, "web_research")
    assert (web.events, web.credits, web.revenue_minor, web.cogs_minor) == (
        0,
        D("-20"),
        D("-40.00000000"),
        D("0E-8"),
    )


def test_by_customer_model_class_and_workflow(mixed: Tenant, other_tenant: Tenant) -> None:
    fund(other_tenant, 10, price_minor=100, reference="o")
    record(other_tenant, "o1", "chat", "5", output_tokens=1_000_000)
    insights_rollup_update()

    customers = margin_list(start=JAN14, end=JAN15, by="tenant")
    acme = _row(customers, mixed.pk)
    assert acme.label == "Acme Agents"
    assert (acme.credits, acme.revenue_minor, acme.cogs_minor) == (
        D("170"),
        D("140.00000000"),
        D("116.00000000"),
    )
    globex = _row(customers, other_tenant.pk)
    assert (globex.credits, globex.revenue_minor, globex.cogs_minor) == (
        D("5"),
        D("50.00000000"),
        D("1500.00000000"),
    )
    classes = margin_list(start=JAN14, end=JAN15, by="model_class", tenant=mixed)
    assert [(r.key, r.credits) for r in classes] == [("", D("130")), ("turbo", D("40"))]
    (outside_runs,) = margin_list(start=JAN14, end=JAN15, by="workflow", tenant=mixed)
    assert (outside_runs.key, outside_runs.events) == ("", 3)


def test_a_second_run_adds_nothing_and_the_backfill_rebuilds_the_same(mixed: Tenant) -> None:
    insights_rollup_update()
    before = sorted(MarginDay.objects.values_list("day", "action", "credits", "revenue_minor"))

    assert insights_rollup_update() == {"margin_events": 0, "ledger_entries": 0}
    assert insights_rollup_backfill() > 0

    after = sorted(MarginDay.objects.values_list("day", "action", "credits", "revenue_minor"))
    assert after == before


def test_the_backfill_command(mixed: Tenant, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("insights_rollup_backfill")

    assert capsys.readouterr().out.startswith("console rollups rebuilt: ")
    assert MarginDay.objects.filter(tenant=mixed).count() == 4
