"""The read pages in a real browser: statement, buckets, workflows (a suspended run first, and
a run's steps) and the rate card, each at a desktop's and a phone's width, with no violation
axe-core can find. One walk, to keep the browser tests few."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from ledger.models import CreditBucket
from ledger.services import ledger_grant
from metering.models import WorkflowRun
from ratecards.services import (
    rate_set,
    ratecard_seed_example,
    ratecard_version_create_draft,
    ratecard_version_publish,
)
from tenants.models import Membership, Tenant
from tenants.services import membership_add
from tests.browser import axe_violations, browser_page, shot, sign_in
from tests.portal.test_workflows import step, stuck_run

__all__ = ["browser_page"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_read_pages_read_well_and_pass_axe(
    live_server: Any, tenant: Tenant, browser_page: Any
) -> None:
    page = browser_page
    user = User.objects.create_user("rita", email="rita@acme.test", password="s3cret-pass!")
    membership_add(tenant=tenant, user=user, role=Membership.Role.BILLING)
    run = stuck_run(tenant)  # the example card, a 3-credit pack, a run suspended at step 3
    card = ratecard_seed_example()
    v2 = ratecard_version_create_draft(rate_card=card)
    rate_set(version=v2, action="chat", credits_per_unit="1.5")
    ratecard_version_publish(version=v2, effective_from=timezone.now() + timedelta(days=30))
    ledger_grant(
        tenant=tenant,
        credits=40,
        policy=CreditBucket.Policy.MONTHLY_RESET,
        source=CreditBucket.Source.SUBSCRIPTION,
        external_reference="sub-1",
        expires_at=timezone.now() + timedelta(days=20),
    )
    ledger_grant(
        tenant=tenant,
        credits=25,
        policy=CreditBucket.Policy.ROLLING_12M,
        source=CreditBucket.Source.PROMOTION,
        external_reference="promo-1",
    )
    step(tenant, run, "s3", 5)  # paid now: the run goes on
    finished = WorkflowRun.objects.get(pk=run.pk)
    stuck = stuck_run_again(tenant)

    sign_in(page, live_server.url, "rita", "s3cret-pass!")

    page.goto(f"{live_server.url}/statement/")
    assert page.inner_text("h1") == "Statement"
    assert page.locator("table tbody tr").count() == 6
    assert axe_violations(page) == []
    shot(page, "portal-statement")

    page.goto(f"{live_server.url}/buckets/?show=all")
    assert page.locator("table tbody tr").count() == 3
    assert axe_violations(page) == []
    shot(page, "portal-buckets")

    page.goto(f"{live_server.url}/workflows/")
    assert "A top-up of at least" in page.inner_text(".card.attention")
    assert axe_violations(page) == []
    shot(page, "portal-workflows")

    page.goto(f"{live_server.url}/workflows/{finished.pk}/")
    assert page.locator("table tbody tr").count() == 3
    assert axe_violations(page) == []
    shot(page, "portal-workflow")

    page.goto(f"{live_server.url}/rate-card/")
    assert "Version 2, from" in page.inner_text("main")
    assert axe_violations(page) == []
    shot(page, "portal-rate-card")
    assert stuck.state == WorkflowRun.State.SUSPENDED


def stuck_run_again(tenant: Tenant) -> WorkflowRun:
    """A second run that asks for more than there is."""
    from metering.exceptions import WorkflowSuspended
    from metering.workflows import workflow_start

    run, _ = workflow_start(
        tenant=tenant,
        external_id="run-9",
        name="Research competitors",
        reserve_credits=None,
        metadata={},
    )
    with pytest.raises(WorkflowSuspended):
        step(tenant, run, "big", 500)
    run.refresh_from_db()
    assert run.suspended_step_credits == Decimal(500)
    return run
