"""The usage page and the estimators in a real browser: the chart draws and its totals equal
the statement's, the CSV downloads, htmx recalculates an estimate (and shows a bad field) in
place; screenshots at 1280 and 390 px; no accessibility violations axe-core can find."""

import csv
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from billing.models import Plan, PlanPrice
from ledger.models import LedgerEntry
from metering.models import UsageEvent
from metering.rollup import usage_rollup_update
from metering.services import UsageInput, usage_event_record
from ratecards.services import ratecard_seed_example
from tenants.models import Membership, Tenant
from tenants.services import membership_add
from tests.billing.conftest import plans
from tests.browser import axe_violations, browser_page, shot, sign_in
from tests.metering.factories import fund

__all__ = ["browser_page", "plans"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _fresh_connection() -> None:
    """The test's ORM calls run on a connection of Playwright's greenlet, which an earlier
    browser test may have left open: start a new one."""
    connection.close()


def _owner(tenant: Tenant) -> None:
    user = User.objects.create_user("olive", email="olive@acme.test", password="s3cret-pass!")
    membership_add(tenant=tenant, user=user, role=Membership.Role.OWNER)


def test_the_usage_chart_equals_the_statement_and_the_csv_downloads(
    live_server: Any, tenant: Tenant, browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    _fresh_connection()
    ratecard_seed_example()
    fund(tenant, 1000)
    for key, action, model_class, quantity in [
        ("c1", "chat", "", 3),
        ("w1", "web_research", "turbo", 1),
        ("d1", "doc_search", "", 2),
        ("=cmd", "chat", "turbo", 1),
    ]:
        usage_event_record(
            tenant=tenant,
            data=UsageInput(
                idempotency_key=key,
                action=action,
                model_class=model_class,
                quantity=Decimal(quantity),
            ),
        )
    usage_rollup_update()
    _owner(tenant)
    today = timezone.now().date()
    start = datetime.combine(today - timedelta(days=29), time.min, UTC)
    statement = -LedgerEntry.objects.filter(
        tenant=tenant, kind="debit", created_at__gte=start
    ).aggregate(total=Sum("amount"))["total"]

    sign_in(page, live_server.url, "olive", "s3cret-pass!")
    page.goto(f"{live_server.url}/usage/")
    page.wait_for_function("() => window.Chart && Chart.getChart('usage-chart')")

    drawn = page.evaluate(
        "() => Chart.getChart('usage-chart').data.datasets.map(d => [d.label, d.data])"
    )
    chart_total = sum((Decimal(str(v)) for _, values in drawn for v in values), Decimal(0))
    assert statement == Decimal("75.0000")  # 3 + 60 + 6 + 6 (a turbo chat: 1 x 6)
    assert chart_total.quantize(Decimal("0.0001")) == statement
    assert sorted(label for label, _ in drawn) == ["chat", "doc_search", "web_research"]
    assert page.inner_text("#usage-table-total") == "75.0000"
    assert axe_violations(page) == []
    shot(page, "portal-usage")

    page.select_option("#id_stack", "model_class")
    page.click("form.filters button[type=submit]")
    page.wait_for_function("() => window.Chart && Chart.getChart('usage-chart')")
    labels = page.evaluate("() => Chart.getChart('usage-chart').data.datasets.map(d => d.label)")
    assert labels == ["turbo", "standard"]

    page.click("button[value=events]")
    page.wait_for_selector("text=Ready: 4 rows.")
    assert axe_violations(page) == []
    shot(page, "portal-usage-export")
    with page.expect_download() as download:
        page.click("text=Download CSV")
    saved = tmp_path / "usage.csv"
    download.value.save_as(saved)
    with saved.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[:3] == ["recorded_at", "occurred_at", "idempotency_key"]
    events = list(UsageEvent.objects.filter(tenant=tenant).order_by("created_at", "id"))
    assert [(r[2], r[6]) for r in rows] == [
        ("'=cmd" if e.idempotency_key == "=cmd" else e.idempotency_key, str(e.credits))
        for e in events
    ]
    assert sum((Decimal(r[6]) for r in rows), Decimal(0)) == statement


def test_the_estimators_recalculate_in_place_and_name_a_bad_field(
    live_server: Any, tenant: Tenant, plans: dict[str, Plan], browser_page: Any
) -> None:
    page = browser_page
    _fresh_connection()
    ratecard_seed_example()
    for plan in plans.values():  # sold in USD at the list price, as subscribing needs
        PlanPrice.objects.create(plan=plan, currency="USD", base_minor=plan.price_minor)

    page.goto(f"{live_server.url}/pricing/estimate/")
    assert axe_violations(page) == []
    page.fill("#count-2", "200")  # chat
    page.fill("#count-3", "100")  # doc_search
    page.wait_for_function(
        "() => (document.querySelector('#estimate .sentence') || {}).textContent"
        "?.includes('400–600')"  # noqa: RUF001
    )
    assert page.inner_text("#estimate .sentence") == (
        "You will use roughly 400–600 credits a month; the 750-credit Pro plan "  # noqa: RUF001
        "(79.00 USD a month) gives comfortable headroom."
    )
    assert "action=chat&model_class=&count=200" in page.url  # the estimate is a link to share
    assert axe_violations(page) == []
    shot(page, "public-estimator")

    page.fill("#count-3", "ten")
    page.wait_for_selector("#estimate .error-list")
    assert page.inner_text("#estimate .error-list") == (
        "Row 3, monthly count: enter a whole number from 0 to 1,000,000,000 (not “ten”)."
    )
    assert axe_violations(page) == []
    shot(page, "public-estimator-error")

    _owner(tenant)
    sign_in(page, live_server.url, "olive", "s3cret-pass!")
    page.goto(f"{live_server.url}/estimator/")
    page.select_option("#model_class-2", "turbo")
    page.fill("#count-2", "100")
    page.wait_for_function(
        "() => (document.querySelector('#estimate .sentence') || {}).textContent"
        "?.includes('480–720')"  # noqa: RUF001
    )
    assert "480–720 credits" in page.inner_text("#estimate .sentence")  # noqa: RUF001
    assert axe_violations(page) == []
    shot(page, "portal-estimator")
