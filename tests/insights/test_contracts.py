"""The console's contracts: created and edited through billing's contract services (each
needing its permission, logged with the user and the reason), and the rate-card trap in money
for a pinned contract with known events."""

from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from billing.models import Contract
from insights.trap import contract_traps_store
from ledger.selectors import available_get
from metering.services import UsageInput, usage_event_record
from ratecards.models import RateCard, RateCardVersion
from ratecards.services import (
    rate_set,
    ratecard_seed_example,
    ratecard_version_create_draft,
    ratecard_version_publish,
)
from tenants.models import Tenant
from tests.insights.conftest import StaffLogin

pytestmark = pytest.mark.django_db
D = Decimal


def _terms(card: RateCard, v1: RateCardVersion, **more: Any) -> dict[str, Any]:
    return {
        "name": "Acme 2026",
        "price_per_1000_minor": "8000",
        "currency": "USD",
        "committed_credits": "10000",
        "grant_schedule": "upfront",
        "start_at": "2026-03-01 00:00:00",
        "end_at": "2027-03-01 00:00:00",
        "rate_card": str(card.pk),
        "rate_card_mode": "pinned",
        "notice_days": "30",
        "pinned_version": str(v1.pk),
        "pinned_until": "2026-09-01 00:00:00",
        "overdraft_limit": "0",
        "monthly_spending_cap_minor": "",
        "net_terms_days": "30",
        "credits_on": "signature",
        "overage_price_per_1000_minor": "",
        "reason": "Signed order form #12",
        **more,
    }


@pytest.fixture
def card() -> tuple[RateCard, RateCardVersion]:
    with time_machine.travel("2026-03-01 00:00:00+00:00", tick=False):
        card = ratecard_seed_example()
    return card, card.versions.get(number=1)


def test_a_pinned_contract_made_in_the_console_and_its_trap_in_money(
    tenant: Tenant, card: tuple[RateCard, RateCardVersion], staff_login: StaffLogin
) -> None:
    """Acme signs 10,000 credits at 80.00 USD per 1,000, pinned to v1 (chat 1, web_research 10,
    turbo x6) until Sep 1. v2 (chat 2, web_research 12) is in effect from Mar 10. In the 30
    days before Apr 10 Acme charged 100 chats (100 credits) and 3 turbo web researches (180);
    under v2 they cost 200 + 216 = 416 credits: the pin forgoes 136 credits, 10.88 USD."""
    rate_card, v1 = card
    client, user = staff_login("add_contract")
    with time_machine.travel("2026-03-01 00:00:00+00:00", tick=False):
        response = client.post(
            "/console/contracts/new/",
            {"tenant": str(tenant.pk), "activate": "on", **_terms(rate_card, v1)},
        )
    (contract,) = Contract.objects.all()
    assert response.status_code == 302
    assert response["Location"] == f"/console/contracts/{contract.pk}/"
    assert contract.status == Contract.Status.ACTIVE
    assert available_get(tenant=tenant) == D("10000.0000")
    (entry,) = LogEntry.objects.all()
    assert (entry.user, entry.object_id, entry.change_message) == (
        user,
        str(contract.pk),
        "created contract for acme and activated it: Signed order form #12",
    )
    with time_machine.travel("2026-03-05 12:00:00+00:00", tick=False):
        usage_event_record(  # outside the 30 days
            tenant=tenant, data=UsageInput(idempotency_key="old", action="chat", quantity=D(50))
        )
    with time_machine.travel("2026-03-10 00:00:00+00:00", tick=False):
        draft = ratecard_version_create_draft(rate_card=rate_card, copy_from=v1)
        rate_set(version=draft, action="chat", credits_per_unit="2")
        rate_set(version=draft, action="web_research", credits_per_unit="12")
        ratecard_version_publish(version=draft, effective_from=draft.created_at)
    with time_machine.travel("2026-03-20 12:00:00+00:00", tick=False):
        usage_event_record(
            tenant=tenant, data=UsageInput(idempotency_key="c", action="chat", quantity=D(100))
        )
        usage_event_record(
            tenant=tenant,
            data=UsageInput(
                idempotency_key="w", action="web_research", model_class="turbo", quantity=D(3)
            ),
        )
    assert available_get(tenant=tenant) == D("9670.0000")  # charged under the pin: 50+100+180

    viewer, _ = staff_login()
    with time_machine.travel("2026-04-10 00:00:00+00:00", tick=False):
        page = viewer.get(f"/console/contracts/{contract.pk}/")
        assert contract_traps_store(now=timezone.now()) == 1  # the hourly job
        listing = viewer.get("/console/contracts/")

    trap = page.context["trap"]
    assert (trap.events, trap.charged, trap.under_current, trap.difference) == (
        2,
        D("280.0000"),
        D("416.0000"),
        D("136.0000"),
    )
    assert (trap.charged_minor, trap.under_current_minor, trap.difference_minor) == (
        2240,
        3328,
        1088,
    )
    assert (trap.pinned.number, trap.current.number) == (1, 2)
    assert trap.pin_ends_at.isoformat() == "2026-09-01T00:00:00+00:00"
    assert b"136.0000 credits, 10.88 USD" in page.content
    assert b"2026-09-01" in page.content
    assert page.context["form"] is None  # no billing.change_contract
    (stored,) = listing.context["traps"]
    assert (stored.contract, stored.until, stored.events, stored.difference_minor) == (
        contract,
        trap.until,
        2,
        1088,
    )
    assert b"(figured 2026-04-10 00:00 UTC)" in listing.content


def test_editing_needs_the_permission_and_is_logged(
    tenant: Tenant, card: tuple[RateCard, RateCardVersion], staff_login: StaffLogin
) -> None:
    rate_card, v1 = card
    adder, _ = staff_login("add_contract")
    with time_machine.travel("2026-03-01 00:00:00+00:00", tick=False):
        adder.post("/console/contracts/new/", {"tenant": str(tenant.pk), **_terms(rate_card, v1)})
    (contract,) = Contract.objects.all()
    assert contract.status == Contract.Status.DRAFT
    LogEntry.objects.all().delete()

    refused = adder.post(
        f"/console/contracts/{contract.pk}/", _terms(rate_card, v1, net_terms_days="45")
    )
    editor, user = staff_login("change_contract")
    with time_machine.travel("2026-03-02 00:00:00+00:00", tick=False):
        invalid = editor.post(
            f"/console/contracts/{contract.pk}/", _terms(rate_card, v1, net_terms_days="400")
        )
        saved = editor.post(
            f"/console/contracts/{contract.pk}/",
            _terms(rate_card, v1, net_terms_days="45", reason="Customer asked for net 45"),
        )

    assert refused.status_code == 403
    assert invalid.status_code == 422
    assert invalid.context["form"].errors == {"net_terms_days": ["Net terms are at most 365 days."]}
    assert saved.status_code == 302
    contract.refresh_from_db()
    assert contract.net_terms_days == 45
    (entry,) = LogEntry.objects.all()
    assert (entry.user, entry.change_message) == (
        user,
        "changed net_terms_days: Customer asked for net 45",
    )


def test_a_staff_user_without_the_permission_sees_no_form(
    tenant: Tenant, staff_login: StaffLogin
) -> None:
    client, _ = staff_login()

    page = client.get("/console/contracts/new/")
    refused = client.post("/console/contracts/new/", {"tenant": str(tenant.pk)})

    assert page.status_code == 200
    assert page.context["form"] is None
    assert b"needs the permission billing.add_contract" in page.content
    assert refused.status_code == 403
    assert not Contract.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("price_per_1000_minor", "-2500", "The price cannot be negative."),
        ("overdraft_limit", "-50", "The overdraft limit cannot be negative."),
        (
            "monthly_spending_cap_minor",
            "-1",
            "The monthly spending cap cannot be negative (leave it empty for none).",
        ),
        (
            "pinned_until",
            "2020-01-01 00:00:00",
            "A pin must last past the contract's start: pinned until is before it.",
        ),
    ],
)
def test_a_contract_with_nonsense_terms_is_refused_at_the_field(
    tenant: Tenant,
    card: tuple[RateCard, RateCardVersion],
    staff_login: StaffLogin,
    field: str,
    value: str,
    message: str,
) -> None:
    rate_card, v1 = card
    client, _ = staff_login("add_contract")
    with time_machine.travel("2026-03-01 00:00:00+00:00", tick=False):
        response = client.post(
            "/console/contracts/new/",
            {"tenant": str(tenant.pk), **_terms(rate_card, v1, **{field: value})},
        )

    assert response.status_code == 422
    assert response.context["form"].errors == {field: [message]}
    assert Contract.objects.count() == 0


def test_committed_credits_too_few_for_their_monthly_tranches_are_refused(
    tenant: Tenant, card: tuple[RateCard, RateCardVersion], staff_login: StaffLogin
) -> None:
    rate_card, v1 = card
    client, _ = staff_login("add_contract")
    terms = _terms(rate_card, v1, committed_credits="0.0001", grant_schedule="monthly")
    with time_machine.travel("2026-03-01 00:00:00+00:00", tick=False):
        response = client.post("/console/contracts/new/", {"tenant": str(tenant.pk), **terms})

    assert response.status_code == 422
    assert response.context["form"].errors == {
        "committed_credits": [
            "0.0001 credits cannot make 12 monthly tranches: each must be at least 0.0001."
        ]
    }
    assert Contract.objects.count() == 0


def test_a_draft_is_put_in_force_from_its_own_page(
    tenant: Tenant, card: tuple[RateCard, RateCardVersion], staff_login: StaffLogin
) -> None:
    rate_card, v1 = card
    client, user = staff_login("add_contract", "change_contract")
    with time_machine.travel("2026-03-01 00:00:00+00:00", tick=False):
        client.post("/console/contracts/new/", {"tenant": str(tenant.pk), **_terms(rate_card, v1)})
        (draft,) = Contract.objects.all()
        assert (draft.status, available_get(tenant=tenant)) == (Contract.Status.DRAFT, D(0))
        page = client.get(f"/console/contracts/{draft.pk}/")
        assert "activate" in page.context["form"].fields
        terms = _terms(rate_card, v1, name="Acme 2026 signed", reason="Countersigned")
        response = client.post(f"/console/contracts/{draft.pk}/", {**terms, "activate": "on"})
        shown = client.get(response["Location"])

    draft.refresh_from_db()
    assert (draft.status, available_get(tenant=tenant)) == (Contract.Status.ACTIVE, D(10000))
    assert [str(m) for m in shown.context["messages"]] == [
        "Contract Acme 2026 signed saved (active)."
    ]
    assert "activate" not in shown.context["form"].fields  # in force: nothing to activate
    entry = LogEntry.objects.filter(user=user).latest("pk")
    assert entry.change_message == "changed name and activated it: Countersigned"
