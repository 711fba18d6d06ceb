"""Every portal page in a real browser as an owner, a billing member and a plain member: each
page answers, offers a role what it may do and nothing it may not (issue 12: no button that
ends in a 403), has no violation axe-core can find, and is shot at 1280 and 390 px (named
`<role>-portal-<page>`). One seed, one browser, one walk per role."""

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User

from billing.models import CreditPack, Plan, PlanPrice
from billing.services import webhook_endpoint_create
from metering.services import UsageInput, usage_event_record
from metering.workflows import workflow_start, workflow_step
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tenants.services import api_key_create, membership_add, membership_invite
from tests.billing.conftest import grant
from tests.browser import axe_violations, browser_page, shot, sign_in

__all__ = ["browser_page"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "s3cret-pass!"
OWNER, BILLING, MEMBER = "owner", "billing", "member"
BUYERS = {OWNER, BILLING}
MANAGERS = {OWNER}
EVERYONE = {OWNER, BILLING, MEMBER}

# Per page: (what is offered, by its selector in <main>, to which roles). Whoever is not named
# must not be offered it.
OFFERS: dict[str, list[tuple[str, set[str]]]] = {
    "overview": [("[data-testid=overview-buy]", BUYERS)],
    "usage": [("button:text-is('Export events')", EVERYONE)],
    "statement": [("button:text-is('Show')", EVERYONE)],
    "buckets": [],
    "workflows": [],
    "workflow": [],
    "buy": [
        ("[data-testid=buy-walk-pack]", BUYERS),
        ("[data-testid=cannot-buy]", {MEMBER}),
    ],
    "payment-methods": [("[data-testid=add-card]", BUYERS)],
    "auto-top-up": [("[data-testid=save]", BUYERS)],
    "plan": [("[data-testid=subscribe]", BUYERS), ("[data-testid=cannot-change]", {MEMBER})],
    "rate-card": [],
    "estimator": [("button:text-is('Estimate')", EVERYONE)],
    "alerts": [("button:text-is('Save')", MANAGERS)],
    "keys": [("button:text-is('Create key')", MANAGERS), ("button:text-is('Revoke')", MANAGERS)],
    "webhooks": [("button:text-is('Add endpoint')", MANAGERS)],
    "webhook": [
        ("button:text-is('Send a test event')", MANAGERS),
        ("button:text-is('Rotate secret')", MANAGERS),
        ("button:text-is('Delete endpoint')", MANAGERS),
    ],
    "team": [
        ("button:text-is('Send invitation')", MANAGERS),
        ("button:text-is('Remove')", MANAGERS),
        ("button:text-is('Change')", MANAGERS),
        ("button:text-is('Withdraw')", MANAGERS),
    ],
}

# What the walk finds wrong today, each with why; once fixed, the walk says so and the entry
# must go.
KNOWN: dict[str, str] = {}


def seed(tenant: Tenant) -> dict[str, str]:
    """Something on every page: credits, usage, a run, a pack and a plan on sale, an API key,
    a webhook endpoint, the three members and a pending invitation."""
    ratecard_seed_example()
    grant(tenant, 500, "walk-welcome")
    for n in range(3):
        usage_event_record(
            tenant=tenant,
            data=UsageInput(idempotency_key=f"walk-{n}", action="chat", quantity=Decimal(2)),
        )
    run, _ = workflow_start(tenant=tenant, external_id="walk-run", name="Answer tickets")
    workflow_step(
        tenant=tenant,
        run=run,
        data=UsageInput(idempotency_key="walk-step", action="doc_search", quantity=Decimal(1)),
    )
    CreditPack.objects.create(
        slug="walk-pack", name="Walk pack", credits=Decimal(1000), price_minor=1000
    )
    plan = Plan.objects.create(
        slug="walk-plan", name="Walk plan", price_minor=2000, included_credits=Decimal(750)
    )
    PlanPrice.objects.create(plan=plan, currency="USD", base_minor=2000)
    api_key_create(tenant=tenant, name="agent runtime")
    endpoint = webhook_endpoint_create(tenant=tenant, url="https://hooks.acme.example/in")
    members = {}
    for role in (OWNER, BILLING, MEMBER):
        user = User.objects.create_user(role, email=f"{role}@acme.test", password=PASSWORD)
        members[role] = membership_add(tenant=tenant, user=user, role=role)
    membership_invite(
        actor=members[OWNER], email="nina@acme.test", role=MEMBER, link=lambda token: token
    )
    return {"workflow": f"workflows/{run.pk}/", "webhook": f"webhooks/{endpoint.pk}/"}


def pages(ids: dict[str, str]) -> dict[str, str]:
    """Page name -> path, in the nav's order, and the two detail pages."""
    paths = {name: "" if name == "overview" else f"{name}/" for name in OFFERS}
    return {**paths, **ids}


def test_every_page_offers_each_role_what_it_may_do(
    live_server: Any, tenant: Tenant, browser_page: Any
) -> None:
    page, base = browser_page, live_server.url
    paths = pages(seed(tenant))
    problems: dict[str, str] = {}
    for role in (OWNER, BILLING, MEMBER):
        page.context.clear_cookies()
        sign_in(page, base, role, PASSWORD)
        for name, path in paths.items():
            response = page.goto(f"{base}/{path}")
            where = f"{role} {name}"
            if response is None or response.status != 200:
                problems[where] = f"/{path} answered {response and response.status}"
                continue
            for selector, roles in OFFERS[name]:
                shown = page.locator(f"main {selector}").count() > 0
                if shown != (role in roles):
                    problems[f"{where} {selector}"] = "offered" if shown else "not offered"
            violations = axe_violations(page)
            if violations:
                problems[f"{where} axe"] = "; ".join(violations)
            shot(page, f"{role}-portal-{name}")

    fixed = sorted(set(KNOWN) - set(problems))
    assert {k: v for k, v in problems.items() if k not in KNOWN} == {}
    assert fixed == [], "fixed now: remove them from KNOWN"
