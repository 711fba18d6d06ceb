"""The console's customer page refunds a usage event found by its idempotency key, whole or in
part, through metering's `usage_event_refund` (the ledger's `ledger_reverse`): the permission
`ledger.adjust_credits`, a token so a double submit refunds once, a line in the staff log, and
the rollups and the statement counting the refund as a reversal naming the event."""

import logging
from decimal import Decimal

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.test import Client

from insights.models import MarginDay
from insights.rollup import insights_rollup_update
from ledger.models import LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from metering.models import UsageDay
from metering.rollup import usage_rollup_update
from metering.services import UsageInput, usage_event_record
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.insights.conftest import StaffLogin
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db
D = Decimal
NOON = "2026-01-15 12:00:00+00:00"
LATER = "2026-01-15 13:00:00+00:00"


@pytest.fixture
def spent(tenant: Tenant) -> None:
    """Jan 15: Acme buys 1,000 credits for $10.00 (1 cent each) and spends 300 on a chat
    (key `chat-1`)."""
    with time_machine.travel(NOON, tick=False):
        ratecard_seed_example()
        fund(tenant, 1000, price_minor=1000)
        usage_event_record(
            tenant=tenant,
            data=UsageInput(
                idempotency_key="chat-1", action="chat", quantity=D(300), input_tokens=360_000
            ),
        )


def _refund(
    client: Client, tenant: Tenant, *, event: str = "chat-1", credits: str = "", token: str = "t1"
) -> object:
    with time_machine.travel(LATER, tick=False):
        return client.post(
            f"/console/customers/{tenant.pk}/",
            {
                "action": "refund",
                "refund-event": event,
                "refund-credits": credits,
                "refund-reason": "The agent failed",
                "refund-token": token,
            },
        )


@pytest.mark.usefixtures("spent")
def test_the_lookup_shows_the_event_and_offers_all_that_is_left(
    tenant: Tenant, staff_login: StaffLogin
) -> None:
    client, _ = staff_login("adjust_credits")

    page = client.get(f"/console/customers/{tenant.pk}/?event=chat-1")

    assert page.status_code == 200
    found = page.context["refund"]
    assert (found.charged, found.refunded, found.left) == (D("300.0000"), D(0), D("300.0000"))
    form = page.context["refund_form"]
    assert (form.initial["event"], form.initial["credits"]) == ("chat-1", D("300.0000"))
    assert len(form.initial["token"]) == 32
    assert b"Refund a usage event" in page.content
    assert b'name="refund-credits" value="300.0000"' in page.content


@pytest.mark.usefixtures("spent")
def test_a_whole_refund_moves_the_balance_and_the_rollups_and_is_logged(
    tenant: Tenant, caplog: pytest.LogCaptureFixture, staff_login: StaffLogin
) -> None:
    client, user = staff_login("adjust_credits")

    with caplog.at_level(logging.INFO, logger="insights.staff"):
        response = _refund(client, tenant)
        again = _refund(client, tenant)  # a double submit

    assert (response.status_code, again.status_code) == (302, 302)  # type: ignore[attr-defined]
    assert available_get(tenant=tenant) == D("1000.0000")
    (refund,) = LedgerTransaction.objects.filter(tenant=tenant, kind="reversal")
    assert (refund.amount, refund.actor, refund.source_type, refund.source_id) == (
        D("300.0000"),
        user,
        "usage_event",
        "chat-1",
    )
    assert refund.memo == "refund of usage event chat-1: The agent failed"
    (entry,) = LogEntry.objects.all()
    assert (entry.user, entry.change_message) == (
        user,
        "refunded 300.0000 credits of usage event chat-1: The agent failed",
    )
    assert [r.getMessage() for r in caplog.records if r.name == "insights.staff"] == [
        f"staff {user.username} ({user.pk}) ledger.CreditAccount: "
        "refunded 300.0000 credits of usage event chat-1: The agent failed"
    ]
    assert ledger_verify() == []


@pytest.mark.usefixtures("spent")
def test_partial_refunds_add_up_and_show_net_on_statement_and_rollups(
    tenant: Tenant, staff_login: StaffLogin
) -> None:
    client, _ = staff_login("adjust_credits")

    first = _refund(client, tenant, credits="100.5", token="t1")
    second = _refund(client, tenant, credits="49.5", token="t2")
    over = _refund(client, tenant, credits="150.0001", token="t3")

    assert (first.status_code, second.status_code) == (302, 302)  # type: ignore[attr-defined]
    assert over.status_code == 422  # type: ignore[attr-defined]
    assert over.context["refund_form"].non_field_errors() == [  # type: ignore[attr-defined]
        "At most 150.0000 credits of this debit can still be reversed."
    ]
    assert available_get(tenant=tenant) == D("850.0000")
    assert [e.change_message for e in LogEntry.objects.order_by("pk")] == [
        "refunded 100.5000 credits of usage event chat-1: The agent failed",
        "refunded 49.5000 credits of usage event chat-1: The agent failed",
    ]
    assert ledger_verify() == []
    with time_machine.travel(LATER, tick=False):
        usage_rollup_update()
        insights_rollup_update()
    day = UsageDay.objects.get(tenant=tenant, action="chat")
    assert (day.events, day.credits, day.credits_refunded) == (1, D("150.0000"), D("150.0000"))
    margin = MarginDay.objects.get(tenant=tenant, action="chat")
    assert (margin.credits, margin.revenue_minor) == (D("150.0000"), D("150.00000000"))
    page = client.get(f"/console/customers/{tenant.pk}/?start=2026-01-01&end=2026-01-31")
    statement = [
        (e.kind, e.amount, e.transaction.source_id) for e in page.context["view"].statement.rows
    ]
    assert statement == [
        ("reversal", D("49.5000"), "chat-1"),
        ("reversal", D("100.5000"), "chat-1"),
        ("debit", D("-300.0000"), "chat-1"),
        ("grant", D("1000.0000"), ""),
    ]
    assert page.context["view"].usage[0].credits_refunded == D("150.0000")
    after = client.get(f"/console/customers/{tenant.pk}/?event=chat-1")
    assert after.context["refund"].left == D("150.0000")


@pytest.mark.usefixtures("spent")
@pytest.mark.parametrize(
    ("event", "credits", "field", "message"),
    [
        ("nope", "", None, "No usage event of this customer has that idempotency key."),
        ("chat-1", "0", "credits", "A refund must be more than 0 credits."),
        ("chat-1", "-5", "credits", "A refund must be more than 0 credits."),
        ("chat-1", "1.00001", "credits", "Ensure that there are no more than 4 decimal places."),
        (
            "chat-1",
            "300.0001",
            None,
            "At most 300.0000 credits of this debit can still be reversed.",
        ),
    ],
)
def test_a_refund_that_cannot_be_made_is_refused_with_its_reason(
    tenant: Tenant,
    staff_login: StaffLogin,
    event: str,
    credits: str,
    field: str | None,
    message: str,
) -> None:
    client, _ = staff_login("adjust_credits")

    response = _refund(client, tenant, event=event, credits=credits)

    assert response.status_code == 422  # type: ignore[attr-defined]
    errors = response.context["refund_form"].errors  # type: ignore[attr-defined]
    assert errors == {field or "__all__": [message]}
    assert message.encode() in response.content  # type: ignore[attr-defined]
    assert available_get(tenant=tenant) == D("700.0000")
    assert not LogEntry.objects.exists()


def test_an_event_that_charged_nothing_cannot_be_refunded(
    tenant: Tenant, staff_login: StaffLogin
) -> None:
    with time_machine.travel(NOON, tick=False):
        ratecard_seed_example()
        fund(tenant, 10)
        usage_event_record(
            tenant=tenant,
            data=UsageInput(
                idempotency_key="free", action="resolution", quantity=D(1), outcome="failure"
            ),
        )
    client, _ = staff_login("adjust_credits")

    lookup = client.get(f"/console/customers/{tenant.pk}/?event=free")
    response = _refund(client, tenant, event="free", credits="1")

    message = "This usage event charged no credits: there is nothing to refund."
    assert lookup.status_code == 409
    assert lookup.context["refund_error"] == message
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert response.context["refund_form"].non_field_errors() == [message]  # type: ignore[attr-defined]
    assert available_get(tenant=tenant) == D("10.0000")


@pytest.mark.usefixtures("spent")
def test_without_the_permission_a_refund_is_refused_and_nothing_moves(
    tenant: Tenant, staff_login: StaffLogin
) -> None:
    client, _ = staff_login("grant_credits")

    page = client.get(f"/console/customers/{tenant.pk}/?event=chat-1")
    response = _refund(client, tenant)

    assert page.status_code == 200
    assert page.context["refund_lookup"] is None
    assert b"Refund a usage event" not in page.content
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert available_get(tenant=tenant) == D("700.0000")
    assert not LedgerTransaction.objects.filter(kind="reversal").exists()
    assert not LogEntry.objects.exists()


@pytest.mark.usefixtures("spent")
def test_an_unknown_key_looked_up_is_a_404_on_the_page(
    tenant: Tenant, other_tenant: Tenant, staff_login: StaffLogin
) -> None:
    client, _ = staff_login("adjust_credits")

    response = client.get(f"/console/customers/{other_tenant.pk}/?event=chat-1")

    assert response.status_code == 404
    assert response.context["refund_error"] == (
        "No usage event of this customer has that idempotency key."
    )
    assert response.context["refund_form"] is None
