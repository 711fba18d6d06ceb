"""The overview: balance with its "as of", the burn rate and run-out date from the ledger's
daily totals, the plan, a low-balance alert, and a workflow run waiting for credits with a
top-up offered to those who may buy (and not to a plain member)."""

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.models import AlertState, Plan
from billing.services.subscriptions import subscription_create
from ledger.rollup import debit_days_update
from ledger.services import ledger_debit
from metering.exceptions import WorkflowSuspended
from metering.services import UsageInput
from metering.workflows import workflow_start, workflow_step
from ratecards.selectors import price_cache_clear
from ratecards.services import ratecard_seed_example
from tenants.models import Membership, Tenant
from tests.billing.conftest import grant
from tests.billing.test_portal_roles import login
from tests.billing.test_subscriptions import priced  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)
NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    price_cache_clear()
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller
    price_cache_clear()


def step(key: str) -> UsageInput:
    return UsageInput(idempotency_key=key, action="web_research", quantity=Decimal(1))


def test_the_overview_of_a_tenant_running_low_with_a_run_waiting(
    tenant: Tenant, clock: time_machine.Traveller
) -> None:
    ratecard_seed_example()  # web_research: 10 credits
    grant(tenant, 15, "welcome")
    run, _ = workflow_start(tenant=tenant, external_id="job-1", name="Research")
    workflow_step(tenant=tenant, run=run, data=step("s1"))
    ledger_debit(tenant=tenant, amount=Decimal(3), idempotency_key="chat")  # 2 left: under 20%
    with pytest.raises(WorkflowSuspended):
        workflow_step(tenant=tenant, run=run, data=step("s2"))
    debit_days_update()
    owner = login(tenant, Membership.Role.BILLING)

    html = owner.get("/").content.decode()

    assert 'data-testid="available">2<' in html
    assert "As of 2026-04-10 12:00:00 UTC" in html
    # 13 credits spent today, half of today gone: 13 / 6.5 days and 13 / 29.5 days.
    assert 'data-testid="burn-7d">2 credits a day<' in html
    assert 'data-testid="burn-30d">0.4407 credits a day<' in html
    assert 'data-testid="runs-out">around 2026-04-11 at this pace<' in html
    assert 'data-testid="plan">No plan: you spend what you buy.' in html
    assert list(AlertState.objects.filter(state="fired").values_list("threshold", flat=True)) == [
        20
    ]
    assert (
        "Low balance: your balance fell under 20% of what you last topped up to "
        "(since 2026-04-10 12:00 UTC)."
    ) in html
    assert 'data-testid="waiting">1 run stopped at a step the balance could not pay. About 8 ' in (
        html
    )
    assert f'data-testid="waiting-{run.pk}"><td>Research</td><td><code>s2</code></td>' in html
    assert 'href="/buy/" data-testid="waiting-top-up"' in html

    member = login(tenant, Membership.Role.MEMBER).get("/").content.decode()
    assert 'data-testid="waiting-top-up"' not in member
    assert 'data-testid="overview-buy"' not in member
    assert "An owner, an admin or a billing member can top up." in member


@pytest.mark.usefixtures("priced")
def test_the_overview_shows_the_plan_its_seats_and_renewal(
    tenant: Tenant, clock: time_machine.Traveller
) -> None:
    subscription_create(tenant=tenant, plan=Plan.objects.get(slug="team"), seats=3)

    html = login(tenant, Membership.Role.MEMBER).get("/").content.decode()

    assert 'data-testid="available">250<' in html
    assert 'data-testid="plan">Team<' in html
    assert 'data-testid="plan-seats">3<' in html
    assert 'data-testid="plan-renews">2026-05-10<' in html
    assert 'data-testid="plan-state">Active<' in html
    assert 'data-testid="runs-out">not at this pace: no usage in the last 30 days<' in html
