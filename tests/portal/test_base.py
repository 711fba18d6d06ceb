"""The portal's base view: who may see which tenant, and the pages a bad address gets."""

from decimal import Decimal

import pytest
from django.test import Client

from ledger.services import credit_account_update, ledger_debit, ledger_grant
from portal.access import Access, Capability
from portal.base import PortalView
from tenants.models import Tenant
from tests.portal.conftest import Login

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_log_in() -> None:
    response = Client().get("/")

    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/")


def test_a_user_without_a_membership_gets_the_portal_404(login: Login) -> None:
    response = login()  # no tenant

    page = response.get("/")

    assert page.status_code == 404
    assert "You are not a member of any tenant yet." in page.content.decode()
    assert "Back to the portal" in page.content.decode()


def test_a_tenant_the_user_is_not_in_is_a_404_like_one_that_does_not_exist(
    login: Login, tenant: Tenant, other_tenant: Tenant
) -> None:
    client = login(tenant)

    foreign = client.get("/?tenant=globex")
    missing = client.get("/?tenant=no-such-tenant")

    assert (foreign.status_code, missing.status_code) == (404, 404)
    said = "You are not a member of that tenant."
    assert (said in foreign.content.decode(), said in missing.content.decode()) == (True, True)


def test_a_tenant_slug_with_a_nul_is_the_404_of_an_unknown_tenant(
    login: Login, tenant: Tenant
) -> None:
    page = login(tenant).get("/statement/?tenant=acme%00")

    assert page.status_code == 404
    assert "You are not a member of that tenant." in page.content.decode()


def test_the_chosen_tenant_is_remembered(
    login: Login, tenant: Tenant, other_tenant: Tenant
) -> None:
    client = login(tenant, other_tenant)

    first = client.get("/")
    chosen = client.get("/?tenant=globex")
    later = client.get("/")

    assert '<p class="big">' in first.content.decode()
    assert "selected>Acme Agents" in first.content.decode()
    assert "selected>Globex Bots" in chosen.content.decode()
    assert "selected>Globex Bots" in later.content.decode()


def test_each_role_may_do_what_issue_12_says() -> None:
    table = {
        role: sorted(c.value for c in Capability if Access(role=role).allows(c))
        for role in ("owner", "admin", "billing", "member", "stranger")
    }

    assert table == {
        "owner": ["buy", "manage", "own", "read"],
        "admin": ["buy", "manage", "read"],
        "billing": ["buy", "read"],
        "member": ["read"],
        "stranger": [],
    }


def test_a_page_cannot_take_over_tenant_resolution() -> None:
    with pytest.raises(TypeError, match="may not override"):

        class Sneaky(PortalView):
            def dispatch(self, request, *args, **kwargs):
                return super().dispatch(request, *args, **kwargs)


def test_the_overview_breakdown_adds_up_to_what_is_available(login: Login, tenant: Tenant) -> None:
    """30 bought, 50 spent under a 40-credit overdraft: the bought bucket is empty, 20 of the
    overdraft is used, and the page says -20 available with a line that accounts for it."""
    ledger_grant(
        tenant=tenant, credits=30, policy="permanent", source="topup", external_reference="p"
    )
    credit_account_update(tenant=tenant, overdraft_limit=Decimal(40))
    ledger_debit(tenant=tenant, amount=Decimal(50), idempotency_key="big")

    page = login(tenant).get("/").content.decode()

    assert 'data-testid="available">-20</span>' in page
    assert "<dt>Bought</dt><dd>0</dd>" in page
    assert '<dd data-testid="overdraft-used">-20</dd>' in page
