"""Contracts are made and changed in the console, never by the admin's own form: the admin's
add and change pages lead there, and the console refuses an invalid contract before saving it
and the resizing of an active one; the tranche and renewal sweeps go on past one broken row."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client

from billing.models import Contract, Plan
from billing.services import (
    contract_activate,
    contract_tranches_due,
    subscription_renew_due,
    subscription_start,
)
from ledger.models import CreditBucket
from ledger.services import ledger_grant
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant

pytestmark = pytest.mark.django_db
START = datetime(2026, 1, 31, 12, tzinfo=UTC)


@pytest.fixture
def admin_client_(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("vendor", "v@x.test", "pw-123456"))
    return client


def console_terms(card_pk: int, **overrides: str) -> dict[str, str]:
    """The console's contract form, filled in."""
    data = {
        "name": "Acme 2026",
        "price_per_1000_minor": "800",
        "currency": "USD",
        "committed_credits": "12000",
        "grant_schedule": "monthly",
        "start_at": "2026-01-31 12:00:00",
        "end_at": "2027-01-31 12:00:00",
        "rate_card": str(card_pk),
        "rate_card_mode": "follow",
        "notice_days": "30",
        "pinned_version": "",
        "pinned_until": "",
        "overdraft_limit": "0",
        "monthly_spending_cap_minor": "",
        "net_terms_days": "30",
        "credits_on": "signature",
        "overage_price_per_1000_minor": "",
        "reason": "Order form #7",
    }
    return {**data, **overrides}


def test_the_admins_contract_pages_lead_to_the_console(
    admin_client_: Client, tenant: Tenant
) -> None:
    with time_machine.travel(START, tick=False):
        contract = _monthly_contract(tenant)

    added = admin_client_.get("/admin/billing/contract/add/")
    posted = admin_client_.post("/admin/billing/contract/add/", {"name": "Bypass"})
    changed = admin_client_.get(f"/admin/billing/contract/{contract.pk}/change/")
    listed = admin_client_.get("/admin/billing/contract/")

    assert (added.status_code, added["Location"]) == (302, "/console/contracts/new/")
    assert (posted.status_code, posted["Location"]) == (302, "/console/contracts/new/")
    assert (changed.status_code, changed["Location"]) == (302, f"/console/contracts/{contract.pk}/")
    assert admin_client_.get("/admin/billing/contract/x/change/").status_code == 404
    assert admin_client_.get("/admin/billing/contract/%C2%B2/change/").status_code == 404
    assert listed.status_code == 200
    assert list(Contract.objects.values_list("name", flat=True)) == [contract.name]


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        (
            {"rate_card_mode": "pinned"},
            {"pinned_version": ["A pinned assignment needs a version."]},
        ),
        ({"net_terms_days": "400"}, {"net_terms_days": ["Net terms are at most 365 days."]}),
        (
            {"overage_price_per_1000_minor": "-1"},
            {"overage_price_per_1000_minor": ["The overage price cannot be negative."]},
        ),
    ],
    ids=["pinned-without-version", "net-terms", "overage"],
)
def test_an_invalid_contract_is_never_saved(
    admin_client_: Client, tenant: Tenant, overrides: dict[str, str], errors: dict[str, Any]
) -> None:
    card = ratecard_seed_example()
    response = admin_client_.post(
        "/console/contracts/new/",
        {"tenant": str(tenant.pk), **console_terms(card.pk, **overrides)},
    )

    assert response.status_code == 422
    assert response.context["form"].errors == errors
    assert not Contract.objects.exists()


def test_an_active_contracts_sizing_is_fixed(admin_client_: Client, tenant: Tenant) -> None:
    # The sizing's fields are disabled on an active contract's form: what is posted for them
    # is ignored, the rest saved.
    with time_machine.travel(START, tick=False):
        contract = _monthly_contract(tenant)
        response = admin_client_.post(
            f"/console/contracts/{contract.pk}/",
            console_terms(
                contract.rate_card_id,
                end_at="2026-04-30 12:00:00",
                committed_credits="1",
                name="Renamed",
            ),
        )

    assert (response.status_code, response["Location"]) == (
        302,
        f"/console/contracts/{contract.pk}/",
    )
    contract.refresh_from_db()
    assert (contract.name, contract.end_at, contract.committed_credits) == (
        "Renamed",
        datetime(2027, 1, 31, 12, tzinfo=UTC),
        Decimal("12000"),
    )


def _monthly_contract(tenant: Tenant) -> Contract:
    contract = Contract.objects.create(
        tenant=tenant,
        name=f"{tenant.slug} 2026",
        price_per_1000_minor=800,
        committed_credits=Decimal("12000"),
        grant_schedule=Contract.Schedule.MONTHLY,
        start_at=START,
        end_at=datetime(2027, 1, 31, 12, tzinfo=UTC),
        rate_card=ratecard_seed_example(),
    )
    contract_activate(contract=contract)
    return contract


def test_one_broken_contract_does_not_stop_the_tranche_sweep(
    tenant: Tenant, other_tenant: Tenant, caplog: Any
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        broken = _monthly_contract(tenant)
        healthy = _monthly_contract(other_tenant)
        # Shortened behind the admin's back: tranche 0 was granted at another size.
        Contract.objects.filter(pk=broken.pk).update(end_at=datetime(2026, 4, 30, tzinfo=UTC))
        clock.move_to(datetime(2026, 3, 1, tzinfo=UTC))
        assert contract_tranches_due() == 1  # the healthy contract's second tranche

    assert CreditBucket.objects.filter(
        tenant=other_tenant, external_reference=f"contract:{healthy.pk}:1"
    ).exists()
    assert f"contract {broken.pk}: tranche grant failed" in caplog.text


def test_one_broken_subscription_does_not_stop_renewal(
    tenant: Tenant, other_tenant: Tenant, plans: dict[str, Plan], caplog: Any
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        broken = subscription_start(tenant=tenant, plan=plans["pro"])
        healthy = subscription_start(tenant=other_tenant, plan=plans["pro"])
        # Period 1's bucket name already taken by a different grant: the renewal conflicts.
        ledger_grant(
            tenant=tenant,
            credits=Decimal("1"),
            policy=CreditBucket.Policy.PERMANENT,
            source=CreditBucket.Source.PROMOTION,
            external_reference=f"sub:{broken.pk}:1",
        )
        clock.move_to(datetime(2026, 3, 1, tzinfo=UTC))
        assert subscription_renew_due() == 1

    assert CreditBucket.objects.filter(
        tenant=other_tenant, external_reference=f"sub:{healthy.pk}:1"
    ).exists()
    assert f"subscription {broken.pk}: renewal failed" in caplog.text
