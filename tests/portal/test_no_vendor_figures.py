"""Customers never see the vendor's cost, revenue or margin (DESIGN.md, "Who sees what"): every
page of portal/urls.py is fetched as the tenant's owner, with the tenant's real ids, and must
show neither the words (COGS, margin, revenue) nor the figures recorded for its usage (each
event's and run's COGS and revenue, in the ways a page would print them).

The patterns are read from portal/urls.py, so a page added later is walked too. A pattern
whose URL takes an id must get a real one: the seeders of tests/<app>/isolation.py fill them
(`workflow_id`, `top_up_id`, ...); a page with a new kind of id adds its seeder there.
"""

import re
from collections.abc import Iterator
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
import time_machine
from django.urls import URLPattern, URLResolver, get_resolver

from metering.models import UsageEvent, WorkflowRun
from metering.services import UsageInput, usage_event_record
from metering.workflows import workflow_start, workflow_step
from tenants.models import Tenant
from tests.isolation import seed
from tests.metering.factories import fund
from tests.portal.conftest import Login

pytestmark = pytest.mark.django_db

VENDOR_WORDS = re.compile(r"\b(cogs|margins?|revenue|cost of goods|unit costs?)\b", re.IGNORECASE)
_KWARG = re.compile(r"<(?:[^>:]+:)?(\w+)>")


def portal_pages(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    """Every URL template in portal/urls.py that answers GET."""
    for entry in get_resolver("portal.urls").url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from portal_pages(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            view = getattr(entry.callback, "view_class", None)
            if view is None or hasattr(view, "get"):
                yield prefix + str(entry.pattern)


PAGES = sorted(portal_pages())


class _Text(HTMLParser):
    """What a person reads: text outside <script> and <style>, and the values of inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        for name, value in attrs:
            if name in ("value", "title", "aria-label", "placeholder", "alt") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def readable(body: str, content_type: str) -> str:
    if "html" not in content_type:
        return body
    parser = _Text()
    parser.feed(body)
    return " ".join(parser.parts)


def vendor_figures(tenant: Tenant) -> set[str]:
    """The tenant's recorded COGS and revenue, as a page might print them (8 and 4 places in
    minor units, and in major units of the currency)."""
    found: set[str] = set()
    values: list[Decimal] = []
    for event in UsageEvent.objects.filter(tenant=tenant):
        values += [event.cogs_minor, event.revenue_minor]
    for run in WorkflowRun.objects.filter(tenant=tenant):
        values += [run.cogs_minor, run.revenue_minor]
    for value in values:
        # Only figures no page prints by chance: big, and with fractions of a cent (a revenue
        # of 300.00000000 would match every "3.00").
        if value >= 100 and (value * 100) % 1:
            found |= {f"{value:.8f}", f"{value:.4f}", f"{value / 100:.4f}", f"{value / 100:.2f}"}
    return found


@pytest.fixture
def usage(tenant: Tenant, frozen_time: time_machine.Traveller) -> dict[str, str]:
    """Every app's isolation seed for the tenant, and usage with sizeable costs: an event with
    millions of tokens, and a workflow run with such a step (a priced pack among the buckets)."""
    values = seed(tenant)
    fund(tenant, 5000, reference="portal-walk-pack", price_minor=61_700)
    heavy: dict[str, Any] = {"input_tokens": 12_345_678, "output_tokens": 890_123, "tool_calls": 7}
    usage_event_record(
        tenant=tenant,
        data=UsageInput(idempotency_key="walk-1", action="chat", quantity=Decimal(3), **heavy),
    )
    run, _ = workflow_start(
        tenant=tenant, external_id="walk-run", name="Walk run", reserve_credits=None, metadata={}
    )
    workflow_step(
        tenant=tenant,
        run=run,
        data=UsageInput(idempotency_key="walk-step", action="chat", quantity=Decimal(2), **heavy),
    )
    return values


# Pages the walk cannot reach yet, each with why. Once a seeder makes one reachable, the walk
# says so and its entry must go.
UNREACHABLE = {
    "buy/receipts/<int:top_up_id>/": "the isolation seeder's top-up is unpaid, so it has no "
    "receipt (and a paid one's page redirects to the gateway's receipt)",
}


def test_no_portal_page_shows_the_vendors_cost_revenue_or_margin(
    login: Login, tenant: Tenant, usage: dict[str, str]
) -> None:
    """One walk over every page (the seed is made once: it is most of the test's time)."""
    client = login(tenant, role="owner")
    figures = vendor_figures(tenant)
    assert {"4477.60400000", "44.78"} <= figures  # the heavy events' COGS, to look for
    assert "statement/" in PAGES  # the portal's patterns were found
    problems: dict[str, str] = {}
    for template in PAGES:
        missing = [name for name in _KWARG.findall(template) if name not in usage]
        if missing:
            if template not in UNREACHABLE:
                problems[template] = f"no tests/<app>/isolation.py seeder fills {missing}"
            continue
        url = "/" + _KWARG.sub(lambda m: usage[m.group(1)], template)
        response = client.get(url)
        if response.status_code >= 400:
            if template not in UNREACHABLE:
                problems[template] = f"{url} answered {response.status_code}"
            continue
        if template in UNREACHABLE:
            problems[template] = "reachable now: remove it from UNREACHABLE"
        if getattr(response, "streaming", False):
            body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
        else:
            body = response.content.decode()
        words = VENDOR_WORDS.findall(readable(body, response.get("Content-Type", "")))
        shown = sorted(f for f in figures if f in body)
        if words or shown:
            problems[template] = f"{url} shows {words + shown}"

    assert problems == {}


def test_every_unreachable_page_is_a_page() -> None:
    assert sorted(set(UNREACHABLE) - set(PAGES)) == []


def test_the_detector_catches_a_leak() -> None:
    page = '<p style="margin: 0">Gross <b>Margin</b> 41%</p><script>var cogs = 1;</script>'

    assert VENDOR_WORDS.findall(readable(page, "text/html")) == ["Margin"]
    assert VENDOR_WORDS.findall(readable("entry,cogs_minor", "text/csv")) == []
    assert VENDOR_WORDS.findall(readable("entry,COGS", "text/csv")) == ["COGS"]
