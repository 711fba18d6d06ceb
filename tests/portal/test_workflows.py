"""The workflows pages: runs waiting for credits first, with why and the top-up that resumes
them; every run with its state, credits and steps; a run's steps; another tenant's run is the
portal's 404; queries per page do not grow with the runs."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.models import TenantBilling
from billing.services.tenant_billing import credits_display_set
from ledger.models import CreditBucket
from metering.exceptions import WorkflowSuspended
from metering.models import WorkflowRun
from metering.services import UsageInput
from metering.workflows import workflow_complete, workflow_start, workflow_step
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import fund
from tests.portal.conftest import Login
from tests.portal.tables import table_rows

pytestmark = pytest.mark.django_db


def step(tenant: Tenant, run: WorkflowRun, key: str, quantity: int) -> None:
    data = UsageInput(idempotency_key=key, action="chat", quantity=Decimal(quantity))
    workflow_step(tenant=tenant, run=run, data=data)


def stuck_run(tenant: Tenant) -> WorkflowRun:
    """Two chat steps paid (1 credit each), the third needs 5 with 1 left: suspended."""
    ratecard_seed_example()
    fund(tenant, 3, reference="pack-3")
    run, _ = workflow_start(
        tenant=tenant, external_id="run-7", name="Triage inbox", reserve_credits=None, metadata={}
    )
    step(tenant, run, "s1", 1)
    step(tenant, run, "s2", 1)
    with pytest.raises(WorkflowSuspended):
        step(tenant, run, "s3", 5)
    run.refresh_from_db()
    return run


def test_a_suspended_run_comes_first_with_the_top_up_that_resumes_it(
    login: Login, tenant: Tenant
) -> None:
    run = stuck_run(tenant)
    done, _ = workflow_start(
        tenant=tenant, external_id="run-8", name="", reserve_credits=None, metadata={}
    )
    workflow_complete(tenant=tenant, run=done)

    page = login(tenant, role="owner").get("/workflows/").content.decode()

    assert run.suspended_step_credits == Decimal("5.0000")
    waiting = page[page.index("Waiting for credits (1)") : page.index('id="runs-heading"')]
    assert "Triage inbox" in waiting
    assert "The balance could not pay its next step. It stopped at step <code>s3</code>." in waiting
    assert (
        "<strong>A top-up of at least 4 credits resumes it</strong>: the step needs 5 and 1 "
        "can be drawn now."
    ) in waiting
    assert '<a class="button" href="/buy/">Buy credits</a>' in waiting


def test_runs_are_listed_newest_first_with_state_credits_and_steps(
    login: Login, tenant: Tenant
) -> None:
    run = stuck_run(tenant)
    done, _ = workflow_start(
        tenant=tenant, external_id="run-8", name="", reserve_credits=None, metadata={}
    )
    workflow_complete(tenant=tenant, run=done)
    client = login(tenant, role="member")

    rows = table_rows(client.get("/workflows/"), "Workflow runs")
    suspended = table_rows(client.get("/workflows/?state=suspended"), "Workflow runs")

    assert [r[:6] for r in rows] == [
        ["run-8", "Completed", "0.0000", "0.0000", "—", "0"],
        ["Triage inbox run-7", "Suspended", "2.0000", "0.0000", "—", "2"],
    ]
    assert [r[0] for r in suspended] == ["Triage inbox run-7"]
    assert run.credits_charged == Decimal(2)


def test_a_member_is_not_offered_a_purchase_they_cannot_make(login: Login, tenant: Tenant) -> None:
    stuck_run(tenant)

    page = login(tenant, role="member").get("/workflows/").content.decode()

    assert "A top-up of at least 4 credits resumes it" in page
    assert "Buy credits</a>" not in page.split('<div class="page">')[1]


def test_once_credits_arrive_the_run_can_go_on(login: Login, tenant: Tenant) -> None:
    run = stuck_run(tenant)
    fund(tenant, 10, reference="pack-10", source=CreditBucket.Source.TOPUP)

    page = login(tenant).get(f"/workflows/{run.pk}/").content.decode()

    assert (
        "Enough credits are there now (the step needs 5, 11 can be drawn): your "
        "integration can replay it"
    ) in page


def test_a_runs_page_lists_its_steps(login: Login, tenant: Tenant) -> None:
    run = stuck_run(tenant)

    response = login(tenant, role="member").get(f"/workflows/{run.pk}/")

    assert response.status_code == 200
    assert [r[:6] for r in table_rows(response, "Steps table")] == [
        ["1", "chat", "—", "1.0000", "Success", "1.0000"],
        ["2", "chat", "—", "1.0000", "Success", "1.0000"],
    ]


def test_another_tenants_run_is_the_portals_404(
    login: Login, tenant: Tenant, other_tenant: Tenant
) -> None:
    foreign = stuck_run(other_tenant)
    client = login(tenant)

    response = client.get(f"/workflows/{foreign.pk}/")
    missing = client.get("/workflows/999999999/")

    assert (response.status_code, missing.status_code) == (404, 404)
    assert "There is no such workflow run." in response.content.decode()
    assert "Triage inbox" not in response.content.decode()


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_queries_do_not_grow_with_runs_or_steps(login: Login, tenant: Tenant) -> None:
    run = stuck_run(tenant)
    client = login(tenant)
    list_one, detail_one = (
        _queries(client, "/workflows/"),
        _queries(client, f"/workflows/{run.pk}/"),
    )

    fund(tenant, 500, reference="pack-500")
    for i in range(60):
        other, _ = workflow_start(
            tenant=tenant, external_id=f"r{i}", name="", metadata={}, reserve_credits=None
        )
        step(tenant, other, f"r{i}-1", 1)
    step(tenant, run, "s3", 5)  # resumes
    for i in range(4, 60):
        step(tenant, run, f"s{i}", 1)
    for i in range(3):
        stuck, _ = workflow_start(
            tenant=tenant, external_id=f"stuck{i}", name="", metadata={}, reserve_credits=None
        )
        with pytest.raises(WorkflowSuspended):
            step(tenant, stuck, f"stuck{i}-1", 10_000)

    assert _queries(client, "/workflows/") == list_one
    assert _queries(client, f"/workflows/{run.pk}/") <= detail_one
    assert len(table_rows(client.get(f"/workflows/{run.pk}/"), "Steps table")) == 50


def test_a_tenant_shown_money_sees_what_resumes_a_run_in_money(
    login: Login, tenant: Tenant
) -> None:
    # Invisible credits at 2 cents a credit: the 4 credits a top-up needs are 0.08 USD.
    run = stuck_run(tenant)
    TenantBilling.objects.create(tenant=tenant, currency="USD")
    credits_display_set(tenant_id=tenant.pk, display="money", minor_per_credit=Decimal("2"))
    client = login(tenant, role="owner")

    listed = client.get("/workflows/")
    shown = client.get(f"/workflows/{run.pk}/").content.decode()
    overview = client.get("/").content.decode()

    assert (
        "<strong>A top-up of at least 0.08 USD resumes it</strong>: the step needs 0.10 USD and "
        "0.02 USD can be drawn now."
    ) in listed.content.decode()
    assert table_rows(listed, "Workflow runs")[0][:4] == [
        "Triage inbox run-7",
        "Suspended",
        "0.04 USD",
        "0.00 USD",
    ]
    assert "<dt>Charged</dt><dd>0.04 USD</dd>" in shown
    assert "About 0.08 USD more pays the steps below." in overview
    for page in (listed.content.decode(), shown, overview):  # no amount in credits
        assert re.findall(r"[0-9] credits|Credits (charged|</th>)", page) == []


def test_a_running_run_shows_what_it_reserved_and_what_it_still_holds(
    login: Login, tenant: Tenant
) -> None:
    """20 reserved at the start, 5 spent from the hold: 15 held now, as the overview says."""
    ratecard_seed_example()
    fund(tenant, 100, reference="pack-100")
    run, _ = workflow_start(
        tenant=tenant, external_id="run-9", name="", reserve_credits=Decimal(20), metadata={}
    )
    step(tenant, run, "t1", 5)
    client = login(tenant, role="member")

    rows = table_rows(client.get("/workflows/"), "Workflow runs")
    overview = client.get("/").content.decode()

    assert rows[0][:6] == ["run-9", "Running", "5.0000", "20.0000", "15.0000", "1"]
    shown = client.get(f"/workflows/{run.pk}/").content.decode()
    assert "<dt>Held now</dt><dd>15.0000</dd>" in shown
    assert 'data-testid="reserved">15</span> held by running workflows' in overview
    # The breakdown adds up to the headline: 100 bought, less the 5 spent and the 15 held.
    assert 'data-testid="available">80</span>' in overview
    assert "<dt>Bought</dt><dd>95</dd>" in overview
    assert '<dd data-testid="held">-15</dd>' in overview
