"""The portal's layout in a real browser: the overview at a desktop's and a phone's width,
with no accessibility violations axe-core can find."""

from typing import Any

import pytest
from django.contrib.auth.models import User

from tenants.models import Membership, Tenant
from tenants.services import membership_add
from tests.billing.conftest import grant
from tests.browser import axe_violations, browser_page, shot, sign_in

__all__ = ["browser_page"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_overview_reads_well_and_passes_axe(
    live_server: Any, tenant: Tenant, other_tenant: Tenant, browser_page: Any
) -> None:
    page = browser_page
    user = User.objects.create_user("olive", email="olive@acme.test", password="s3cret-pass!")
    membership_add(tenant=tenant, user=user, role=Membership.Role.OWNER)
    membership_add(tenant=other_tenant, user=user, role=Membership.Role.MEMBER)
    grant(tenant, 120, "welcome")

    sign_in(page, live_server.url, "olive", "s3cret-pass!")
    page.goto(f"{live_server.url}/?tenant=acme")

    assert "120" in page.inner_text("main .big")
    assert axe_violations(page) == []
    shot(page, "portal-overview")
    page.select_option("#tenant-switch", "globex")
    page.wait_for_url("**/?tenant=globex")
    assert page.inner_text("nav.side .role") == "Member"
