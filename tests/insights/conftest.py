"""What the console's tests share: three days of seeded usage of two customers, a browser
signed in as a staff user (tests/browser.py's page), and clients signed in as staff users with
given permissions. Fixtures only: a test that asks for none pays nothing."""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.test import Client

from insights.rollup import insights_rollup_update
from ledger.services import ledger_expire_due
from metering.services import UsageInput, usage_event_record
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.browser import browser_page, sign_in
from tests.metering.factories import fund

__all__ = ["StaffLogin", "browser_page"]
D = Decimal
STAFF_PASSWORD = "s3cret-staff"
# staff_login's: (*permissions) -> (a signed-in client, its user).
StaffLogin = Callable[..., tuple[Client, User]]


@pytest.fixture
def console_usage(tenant: Tenant, other_tenant: Tenant) -> None:
    """Jan 10-12, 2026 under the standard card: Acme (1,000 permanent credits at 1 cent each)
    chats 300 a day on 400k, 800k, 1.2M input tokens; Globex (200 rolling credits at 2.5 cents
    each) researches once a day on 500k output tokens (turbo after the first day). Rollups
    folded in."""
    with time_machine.travel("2026-01-10 12:00:00+00:00", tick=False) as clock:
        ratecard_seed_example()
        fund(tenant, 1000, price_minor=1000)
        fund(other_tenant, 200, price_minor=500, reference="g", policy="rolling_12m")
        for day in range(3):
            clock.move_to(f"2026-01-{10 + day} 12:00:00+00:00")
            usage_event_record(
                tenant=tenant,
                data=UsageInput(
                    idempotency_key=f"a{day}",
                    action="chat",
                    quantity=D(300),
                    input_tokens=400_000 * (day + 1),
                ),
            )
            usage_event_record(
                tenant=other_tenant,
                data=UsageInput(
                    idempotency_key=f"g{day}",
                    action="web_research",
                    quantity=D(1),
                    model_class="turbo" if day else "",
                    output_tokens=500_000,
                ),
            )
        ledger_expire_due()
        insights_rollup_update()


@pytest.fixture
def console_staff(db: None) -> User:
    """`vendor`, a staff user with no permissions (a test adds the ones it needs)."""
    return User.objects.create_user("vendor", password=STAFF_PASSWORD, is_staff=True)


@pytest.fixture
def console_page(live_server: Any, browser_page: Any, console_staff: User) -> Any:
    """The browser, signed in as `console_staff`."""
    sign_in(browser_page, live_server.url, console_staff.username, STAFF_PASSWORD)
    return browser_page


@pytest.fixture
def staff_login(db: None) -> StaffLogin:
    """Makes a staff user (`vendor0`, `vendor1`, ... by the number of users before it) holding
    the given permissions, each a codename (`grant_credits`) or with its app
    (`ratecards.add_ratecardversion`), and returns a client signed in as it, and the user."""

    def login(*permissions: str) -> tuple[Client, User]:
        user = User.objects.create_user(f"vendor{User.objects.count()}", is_staff=True)
        for name in permissions:
            app, _, codename = name.rpartition(".")
            found = Permission.objects.filter(codename=codename)
            user.user_permissions.add(
                found.get(content_type__app_label=app) if app else found.get()
            )
        client = Client()
        client.force_login(user)
        return client, user

    return login
