"""The console's customer page: what it shows of one customer, its statement a page at a time,
and grant / adjust through the ledger's services, each needing its permission and logged with
the user and the reason."""

import logging
from decimal import Decimal

import pytest
import time_machine
from django.contrib.admin.models import LogEntry

from insights.rollup import insights_rollup_update
from ledger.models import LedgerTransaction
from ledger.selectors import available_get
from metering.rollup import usage_rollup_update
from metering.services import UsageInput, usage_event_record
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.insights.conftest import StaffLogin
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db
D = Decimal
RANGE = "start=2026-01-01&end=2026-01-31"


@pytest.fixture
def spent(tenant: Tenant) -> None:
    """Jan 15: Acme buys 1,000 credits for $10.00 and spends 300 on chats (COGS $0.90)."""
    with time_machine.travel("2026-01-15 12:00:00+00:00", tick=False):
        ratecard_seed_example()
        fund(tenant, 1000, price_minor=1000)
        usage_event_record(
            tenant=tenant,
            data=UsageInput(
                idempotency_key="a", action="chat", quantity=D(300), input_tokens=360_000
            ),
        )
        usage_rollup_update()
        insights_rollup_update()


@pytest.mark.usefixtures("spent")
def test_the_page_shows_balance_buckets_usage_margin_and_statement(
    tenant: Tenant, staff_login: StaffLogin
) -> None:
    client, _ = staff_login()

    response = client.get(f"/console/customers/{tenant.pk}/?{RANGE}")

    assert response.status_code == 200
    view = response.context["view"]
    assert view.balance.available == D("700.0000")
    assert [(b.granted, b.remaining) for b in view.buckets.rows] == [(D(1000), D(700))]
    assert [(u.key["action"], u.events, u.credits) for u in view.usage] == [
        ("chat", 1, D("300.0000"))
    ]
    (chat,) = view.by_action
    assert (chat.key, chat.revenue_minor, chat.cogs_minor, chat.margin_percent) == (
        "chat",
        D("300.00000000"),
        D("90.00000000"),
        D("70.0"),
    )
    assert [(e.kind, e.amount) for e in view.statement.rows] == [
        ("debit", D("-300.0000")),
        ("grant", D("1000.0000")),
    ]
    assert b"700.0000" in response.content
    # Without the permissions, neither form is shown.
    assert response.context["grant_form"] is None
    assert response.context["adjust_form"] is None
    assert b"Grant free credits" not in response.content


def test_an_unknown_customer_is_a_404(staff_login: StaffLogin) -> None:
    client, _ = staff_login()

    assert client.get("/console/customers/999999/").status_code == 404


def test_the_customers_list_links_to_the_page(tenant: Tenant, staff_login: StaffLogin) -> None:
    client, _ = staff_login()

    response = client.get("/console/")

    assert f'href="/console/customers/{tenant.pk}/?start='.encode() in response.content


def test_the_statement_is_paged(tenant: Tenant, staff_login: StaffLogin) -> None:
    for i in range(30):
        fund(tenant, 1, reference=f"r{i}")
    client, _ = staff_login()

    first = client.get(f"/console/customers/{tenant.pk}/")
    page = first.context["view"].statement
    assert len(page.rows) == 25
    assert page.next_after == page.rows[-1].pk
    second = client.get(f"/console/customers/{tenant.pk}/?after={page.next_after}")

    assert len(second.context["view"].statement.rows) == 5
    assert second.context["view"].statement.next_after is None


def test_staff_without_the_permission_is_refused_and_nothing_moves(
    tenant: Tenant, staff_login: StaffLogin
) -> None:
    client, _ = staff_login()

    grant = client.post(
        f"/console/customers/{tenant.pk}/",
        {
            "action": "grant",
            "grant-credits": "50",
            "grant-policy": "permanent",
            "grant-reason": "x",
            "grant-token": "t",
        },
    )
    adjust = client.post(
        f"/console/customers/{tenant.pk}/",
        {"action": "adjust", "adjust-credits": "50", "adjust-reason": "x", "adjust-token": "t"},
    )

    assert grant.status_code == 403
    assert adjust.status_code == 403
    assert available_get(tenant=tenant) == D(0)
    assert not LogEntry.objects.exists()


def test_a_grant_goes_through_the_ledger_and_is_logged(
    tenant: Tenant, caplog: pytest.LogCaptureFixture, staff_login: StaffLogin
) -> None:
    client, user = staff_login("grant_credits")
    page = client.get(f"/console/customers/{tenant.pk}/")
    assert page.context["adjust_form"] is None
    token = page.context["grant_form"].initial["token"]
    body = {
        "action": "grant",
        "grant-credits": "50",
        "grant-policy": "permanent",
        "grant-reason": "Apology for the outage",
        "grant-token": token,
    }

    with caplog.at_level(logging.INFO, logger="insights.staff"):
        response = client.post(f"/console/customers/{tenant.pk}/", body)
        again = client.post(f"/console/customers/{tenant.pk}/", body)  # a double submit

    assert response.status_code == 302
    assert response["Location"] == f"/console/customers/{tenant.pk}/"
    assert again.status_code == 302
    assert available_get(tenant=tenant) == D("50.0000")
    (tx,) = LedgerTransaction.objects.filter(tenant=tenant)
    assert (tx.kind, tx.amount, tx.actor, tx.memo, tx.source_type) == (
        "grant",
        D("50.0000"),
        user,
        "Apology for the outage",
        "console",
    )
    (entry,) = LogEntry.objects.all()
    assert (entry.user, entry.change_message) == (
        user,
        "granted 50 credits (permanent): Apology for the outage",
    )
    assert [r.getMessage() for r in caplog.records if r.name == "insights.staff"] == [
        f"staff {user.username} ({user.pk}) ledger.CreditAccount: "
        "granted 50 credits (permanent): Apology for the outage"
    ]


def test_an_adjustment_the_balance_cannot_cover_is_refused_whole(
    tenant: Tenant, staff_login: StaffLogin
) -> None:
    fund(tenant, 20)
    client, user = staff_login("adjust_credits")

    refused = client.post(
        f"/console/customers/{tenant.pk}/",
        {
            "action": "adjust",
            "adjust-credits": "-30",
            "adjust-reason": "Duplicate grant",
            "adjust-token": "t1",
        },
    )
    taken = client.post(
        f"/console/customers/{tenant.pk}/",
        {
            "action": "adjust",
            "adjust-credits": "-15",
            "adjust-reason": "Duplicate grant",
            "adjust-token": "t2",
        },
    )

    assert refused.status_code == 422
    assert b'role="alert"' in refused.content
    assert taken.status_code == 302
    assert available_get(tenant=tenant) == D("5.0000")
    (entry,) = LogEntry.objects.all()
    assert (entry.user, entry.change_message) == (user, "adjusted by -15 credits: Duplicate grant")


def test_a_grant_without_a_reason_is_refused(tenant: Tenant, staff_login: StaffLogin) -> None:
    client, _ = staff_login("grant_credits")

    response = client.post(
        f"/console/customers/{tenant.pk}/",
        {
            "action": "grant",
            "grant-credits": "5",
            "grant-policy": "monthly_reset",
            "grant-reason": "",
            "grant-token": "t",
        },
    )

    assert response.status_code == 422
    assert response.context["grant_form"].errors == {
        "reason": ["This field is required."],
        "expires_at": ["Monthly reset credits need the date they expire."],
    }
    assert available_get(tenant=tenant) == D(0)


@pytest.mark.parametrize("action", ["grant", "adjust"])
def test_a_token_longer_than_a_form_makes_is_refused(
    tenant: Tenant, action: str, staff_login: StaffLogin
) -> None:
    fund(tenant, 20)
    client, _ = staff_login("grant_credits", "adjust_credits")

    response = client.post(
        f"/console/customers/{tenant.pk}/",
        {
            "action": action,
            f"{action}-credits": "-1" if action == "adjust" else "5",
            f"{action}-policy": "permanent",
            f"{action}-reason": "Goodwill",
            f"{action}-token": "x" * 321,
        },
    )

    assert response.status_code == 422
    assert response.context[f"{action}_form"].errors == {
        "token": ["Ensure this value has at most 64 characters (it has 321)."]
    }
    assert available_get(tenant=tenant) == D(20)
