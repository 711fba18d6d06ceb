"""The console's customer, plan-fit and contract pages in a browser (Debian's chromium), as a
staff user holding the money permissions (so every form shows): a screenshot of each at 1280
and 390 px (var/screenshots/console-*.png), axe-core's check, and a grant made through the
customer page's form."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from billing.models import Contract, Plan, PlanPrice, Subscription
from insights.models import ReconciliationRun
from insights.reconcile import reconciliation_run
from insights.rollup import insights_rollup_update
from insights.trap import contract_traps_store
from ledger.periods import add_months
from ledger.selectors import available_get
from metering.models import UsageRefusalDay
from metering.rollup import usage_rollup_update
from metering.services import UsageInput, usage_event_record
from ratecards.models import RateCardAssignment
from ratecards.services import (
    rate_set,
    ratecard_assign,
    ratecard_seed_example,
    ratecard_version_create_draft,
    ratecard_version_publish,
)
from tenants.models import Tenant
from tests.browser import axe_violations, shot
from tests.metering.factories import fund

D = Decimal


def _pinned_contract(tenant: Tenant) -> Contract:
    """Pinned to v1 of the standard card after v2 (chat at 2 credits) was published, so the
    trap has a figure; made directly (tests/insights/test_contracts.py goes through the form)."""
    card = ratecard_seed_example()
    v1 = card.versions.get(number=1)
    draft = ratecard_version_create_draft(rate_card=card, copy_from=v1)
    rate_set(version=draft, action="chat", credits_per_unit="2")
    ratecard_version_publish(version=draft, effective_from=draft.created_at)
    ratecard_assign(
        tenant=tenant,
        rate_card=card,
        mode=RateCardAssignment.Mode.PINNED,
        pinned_version=v1,
        pinned_until=datetime(2027, 9, 1, tzinfo=UTC),
    )
    for i in range(2):  # today: in the trap's 30 days, charged under the pin
        usage_event_record(
            tenant=tenant,
            data=UsageInput(idempotency_key=f"now{i}", action="chat", quantity=D(50)),
        )
    return Contract.objects.create(
        tenant=tenant,
        name="Acme 2026",
        status=Contract.Status.ACTIVE,
        price_per_1000_minor=8000,
        committed_credits=D(10000),
        start_at=datetime(2026, 1, 1, tzinfo=UTC),
        end_at=datetime(2028, 1, 1, tzinfo=UTC),
        rate_card=card,
        rate_card_mode=Contract.RateCardMode.PINNED,
        pinned_version=v1,
        pinned_until=datetime(2027, 9, 1, tzinfo=UTC),
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_customer_plan_fit_and_contract_pages_in_a_browser(
    live_server: Any, console_page: Any, console_staff: User, tenant: Tenant
) -> None:
    with time_machine.travel("2026-01-10 12:00:00+00:00", tick=False):
        ratecard_seed_example()
        fund(tenant, 1000, price_minor=1000)
        for i in range(3):
            usage_event_record(
                tenant=tenant,
                data=UsageInput(
                    idempotency_key=f"a{i}", action="chat", quantity=D(100), input_tokens=90_000
                ),
            )
        usage_rollup_update()
        insights_rollup_update()
    contract = _pinned_contract(tenant)
    assert contract_traps_store(now=timezone.now()) == 1  # the hourly job, for the list
    _plan_fit(tenant)
    reconciliation_run(trigger=ReconciliationRun.Trigger.SCHEDULE)  # the hourly task's
    for codename in (
        "grant_credits",
        "adjust_credits",
        "add_contract",
        "change_contract",
        "add_reconciliationrun",
    ):
        console_staff.user_permissions.add(Permission.objects.get(codename=codename))
    page = console_page

    found: dict[str, list[str]] = {}
    for name, path in [
        ("customer", f"customers/{tenant.pk}/?start=2026-01-01&end=2026-01-31"),
        ("plan-fit", "plan-fit/"),
        ("contracts", "contracts/"),
        ("contract-new", f"contracts/new/?tenant={tenant.pk}"),
        ("contract", f"contracts/{contract.pk}/"),
        ("reconciliation", "reconciliation/"),
    ]:
        page.goto(f"{live_server.url}/console/{path}")
        assert page.locator("h1").first.is_visible()
        shot(page, f"console-{name}")
        found[name] = axe_violations(page)

    assert found == {name: [] for name in found}
    for path in (f"contracts/{contract.pk}/", "contracts/"):  # live, and as the job stored it
        page.goto(f"{live_server.url}/console/{path}")
        assert page.get_by_text("100.0000 credits, 8.00 USD").is_visible()
    page.goto(f"{live_server.url}/console/plan-fit/")
    assert page.get_by_text("+70.00 USD").is_visible()
    page.goto(f"{live_server.url}/console/reconciliation/")
    page.get_by_role("button", name="Run it now").click()  # run by the task (eager here)
    page.wait_for_url("**/console/reconciliation/")
    (_, asked) = ReconciliationRun.objects.order_by("id")
    assert page.get_by_text(f"Run {asked.pk} started").is_visible()
    assert "(Asked for by staff, " in page.locator("section").first.inner_text()
    page.goto(f"{live_server.url}/console/customers/{tenant.pk}/")
    page.fill("#id_grant-credits", "25")
    page.select_option("#id_grant-policy", "permanent")
    page.fill("#id_grant-reason", "Goodwill")
    page.get_by_role("button", name="Grant").click()
    page.wait_for_url(f"**/console/customers/{tenant.pk}/")
    assert page.get_by_text("Granted 25 credits").is_visible()
    assert available_get(tenant=tenant) == D("625.0000")  # 1,000 - 300 - 100 + 25


def _plan_fit(tenant: Tenant) -> None:
    """Acme on a 1,000-credit plan since four months ago, out of credits in two of its last
    three periods: plan fit suggests the 5,000-credit one."""
    small = Plan.objects.create(slug="s", name="Starter", price_minor=2900, included_credits=1000)
    big = Plan.objects.create(slug="p", name="Pro", price_minor=9900, included_credits=5000)
    for plan in (small, big):  # sold in USD at the list price, as subscribing needs
        PlanPrice.objects.create(plan=plan, currency="USD", base_minor=plan.price_minor)
    now = timezone.now()
    anchor = add_months(now.replace(hour=0, minute=0, second=0, microsecond=0), -4)
    Subscription.objects.create(
        tenant=tenant,
        plan=small,
        anchor=anchor,
        current_period_start=add_months(anchor, 4),
        current_period_end=add_months(anchor, 5),
    )
    for k in (1, 2):
        day = add_months(anchor, k).date() + timedelta(days=3)
        UsageRefusalDay.objects.create(
            tenant=tenant, day=day, reason="insufficient_credits", count=k
        )
