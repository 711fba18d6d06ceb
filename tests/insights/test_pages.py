"""The console's pages: staff only (every URL walked as anonymous, a tenant's owner and staff),
the customers and margin pages' figures, the margin CSV row by row, the admin's link."""

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import Contract
from insights.rollup import insights_rollup_update
from insights.simulator import simulation_request
from insights.urls import urlpatterns
from metering.services import UsageInput, usage_event_record
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tenants.services import membership_add
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db

D = Decimal


def _url(name: str, **ids: int) -> str:
    """A console route; one that names a customer, a contract, a rate card version or a
    simulation gets its id (anonymous and tenant users are refused before the id is looked up,
    so 0 walks them)."""
    (pattern,) = [p for p in urlpatterns if p.name == name]
    kwargs = {key: ids.get(key, 0) for key in pattern.pattern.converters}
    return reverse(f"insights:{name}", kwargs=kwargs)


NAMES = [str(p.name) for p in urlpatterns]
URLS = [_url(name) for name in NAMES]
# The pages (the rest are POST-only actions: tests/insights/test_simulator.py posts to them).
GET_NAMES = [
    str(p.name)
    for p in urlpatterns
    if "get" in p.callback.view_class.http_method_names  # type: ignore[attr-defined]
]
RANGE = "start=2026-01-01&end=2026-01-31"


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("vendor", is_staff=True))
    return client


@pytest.fixture
def owner(tenant: Tenant) -> Client:
    user = User.objects.create_user("owner")
    membership_add(tenant=tenant, user=user, role="owner")
    client = Client()
    client.force_login(user)
    return client


def test_the_console_pages() -> None:
    assert URLS == [
        "/console/",
        "/console/customers/0/",
        "/console/contracts/",
        "/console/contracts/new/",
        "/console/contracts/0/",
        "/console/margin/",
        "/console/breakage/",
        "/console/plan-fit/",
        "/console/weights/",
        "/console/reconciliation/",
        "/console/exchange-rates/",
        "/console/rate-cards/",
        "/console/rate-cards/versions/0/",
        "/console/rate-cards/versions/0/publish/",
        "/console/simulations/",
        "/console/simulations/0/",
        "/console/weights/draft/",
    ]


@pytest.mark.parametrize("url", [*URLS, "/console/margin/?format=csv"])
def test_anonymous_is_sent_to_the_login_page(client: Client, url: str) -> None:
    response = client.get(url)

    assert response.status_code == 302
    assert (
        response["Location"]
        == f"/accounts/login/?next={url.replace('?', '%3F').replace('=', '%3D')}"
    )


@pytest.mark.parametrize("url", [*URLS, "/console/margin/?format=csv"])
def test_a_tenant_owner_is_refused(owner: Client, url: str) -> None:
    response = owner.get(url)

    assert response.status_code == 403
    assert b"The vendor console is for the vendor&#x27;s staff." in response.content
    assert b"COGS" not in response.content


@pytest.mark.parametrize("name", GET_NAMES)
def test_staff_see_every_page(staff: Client, tenant: Tenant, name: str) -> None:
    card = ratecard_seed_example()
    contract = Contract.objects.create(
        tenant=tenant,
        name="C",
        price_per_1000_minor=1000,
        committed_credits=D(1000),
        start_at=datetime(2026, 1, 1, tzinfo=UTC),
        end_at=datetime(2027, 1, 1, tzinfo=UTC),
        rate_card=card,
    )
    version = card.versions.get()
    simulation = simulation_request(user=None, version=version, cost_catalog=None)
    url = _url(
        name,
        tenant_id=tenant.pk,
        contract_id=contract.pk,
        version_id=version.pk,
        simulation_id=simulation.pk,
    )

    assert staff.get(url).status_code == 200


@pytest.fixture
def usage(tenant: Tenant, other_tenant: Tenant) -> Iterator[None]:
    """Jan 15: Acme spends 1,000 credits bought at $10.00 per 1,000 on chats costing $3.01;
    Globex spends 5 credits bought at 10 cents each on chats costing $15.00 (margin-negative)."""
    with time_machine.travel("2026-01-15 12:00:00+00:00", tick=False):
        ratecard_seed_example()
        fund(tenant, 1000, price_minor=1000)
        usage_event_record(
            tenant=tenant,
            data=UsageInput(
                idempotency_key="a", action="chat", quantity=D(1000), input_tokens=1_204_000
            ),
        )
        fund(other_tenant, 10, price_minor=100, reference="g")
        usage_event_record(
            tenant=other_tenant,
            data=UsageInput(
                idempotency_key="g", action="chat", quantity=D(5), output_tokens=1_000_000
            ),
        )
        insights_rollup_update()
        yield


@pytest.mark.usefixtures("usage")
def test_customers_show_margin_and_flag_the_negative(staff: Client) -> None:
    response = staff.get(f"/console/?{RANGE}&sort=margin&dir=desc")

    rows = [(r.tenant.name, r.margin_percent, r.negative) for r in response.context["rows"]]
    assert rows == [("Acme Agents", D("69.9"), False), ("Globex Bots", D("-2900.0"), True)]
    assert b"margin-negative" in response.content
    assert b"&amp;sort=margin&amp;dir=asc" in response.content  # the header flips the order
    assert b"Gross margin \xe2\x96\xbc" in response.content
    only = staff.get(f"/console/?{RANGE}&negative=1")
    assert [r.tenant.name for r in only.context["rows"]] == ["Globex Bots"]


@pytest.mark.usefixtures("usage")
def test_the_margin_csv_row_by_row(staff: Client) -> None:
    response = staff.get(f"/console/margin/?by=tenant&{RANGE}&format=csv")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:9] == [
        "tenant",
        "name",
        "currency",
        "cogs_currency",
        "events",
        "credits",
        "revenue_minor",
        "cogs_minor",
        "gross_margin_percent",
    ]
    assert [r[1:9] for r in rows[1:]] == [
        ["Acme Agents", "USD", "USD", "1", "1000.0000", "1000.00000000", "301.00000000", "69.9"],
        ["Globex Bots", "USD", "USD", "1", "5.0000", "50.00000000", "1500.00000000", "-2900.0"],
    ]


@pytest.mark.usefixtures("usage")
def test_the_margin_page_by_action(staff: Client) -> None:
    response = staff.get(f"/console/margin/?by=action&{RANGE}")

    (chat,) = response.context["rows"]
    assert (chat.key, chat.credits, chat.revenue_minor, chat.cogs_minor) == (
        "chat",
        D("1005"),
        D("1050.00000000"),
        D("1801.00000000"),
    )
    assert b"10.50 USD" in response.content
    assert response.context["chart"] == {
        "currency": "USD",
        "labels": ["2026-01-15"],
        "revenue": ["10.50"],
        "cogs": ["18.01"],
    }
    assert b"18.01 USD" in response.content


def test_the_admin_index_links_to_the_console(staff: Client) -> None:
    response = staff.get("/admin/")

    assert response.status_code == 200
    assert b'href="/console/margin/"' in response.content


def _seed_tenants(prefix: str, count: int) -> None:
    """`count` tenants, each with 100 credits bought for $1.00 and one chat spent."""
    with time_machine.travel("2026-01-15 12:00:00+00:00", tick=False):
        ratecard_seed_example()
        for i in range(count):
            t = Tenant.objects.create(name=f"{prefix}{i:03}", slug=f"{prefix.lower()}{i:03}")
            fund(t, 100, price_minor=100, reference=f"{prefix}{i}")
            usage_event_record(
                tenant=t,
                data=UsageInput(idempotency_key="k", action="chat", quantity=D(1), tool_calls=1),
            )
        insights_rollup_update()


@pytest.mark.parametrize(
    "url",
    [f"/console/?{RANGE}", f"/console/margin/?by=tenant&{RANGE}", f"/console/breakage/?{RANGE}"],
)
def test_statements_per_page_do_not_grow_with_the_tenants(staff: Client, url: str) -> None:
    _seed_tenants("T", 2)
    with CaptureQueriesContext(connection) as few:
        assert staff.get(url).status_code == 200
    _seed_tenants("U", 6)
    with CaptureQueriesContext(connection) as many:
        response = staff.get(url)

    assert response.status_code == 200
    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_customer_paying_in_eur_has_no_margin_against_usd_costs(
    staff: Client, other_tenant: Tenant
) -> None:
    """Credits bought in EUR, costs in USD: both shown, in their currencies, and no margin
    (no exchange-rate table), never a sum of the two."""
    with time_machine.travel("2026-01-15 12:00:00+00:00", tick=False):
        ratecard_seed_example()
        fund(other_tenant, 10, price_minor=90, reference="e", currency="EUR")
        usage_event_record(
            tenant=other_tenant,
            data=UsageInput(idempotency_key="g", action="chat", quantity=D(5), tool_calls=1),
        )
        insights_rollup_update()

    response = staff.get(f"/console/?{RANGE}")

    (row,) = [r for r in response.context["rows"] if r.tenant == other_tenant]
    assert row.revenue_by_currency == {"EUR": D("45.00000000")}
    assert row.cogs_by_currency == {"USD": D("8.00000000")}
    assert row.margin is None
    assert not row.negative
    assert b"0.45 EUR" in response.content
    assert b"0.08 USD" in response.content


def test_the_weights_page_suggests_for_the_reference_run(staff: Client, tenant: Tenant) -> None:
    with time_machine.travel("2026-01-15 12:00:00+00:00", tick=False):
        ratecard_seed_example()
        fund(tenant, 1000, price_minor=1000)
        usage_event_record(
            tenant=tenant,
            data=UsageInput(
                idempotency_key="a", action="chat", quantity=D(1000), input_tokens=1_204_000
            ),
        )
        insights_rollup_update()

    response = staff.get(f"/console/weights/?{RANGE}&target=70&price=1000&step=0.01&currency=USD")

    (chat,) = response.context["suggested"]
    assert (chat.action, chat.current, chat.suggested) == ("chat", D("1"), D("1.01"))
    assert b"69.9 %" in response.content
    assert b"70.2 %" in response.content
    bad = staff.get(f"/console/weights/?{RANGE}&target=100")
    assert bad.context["suggested"] == []
    assert b"The target is a percentage under 100" in bad.content


@pytest.mark.usefixtures("usage")
def test_one_customers_margin_and_an_unknown_one(staff: Client, tenant: Tenant) -> None:
    response = staff.get(f"/console/margin/?by=action&tenant={tenant.pk}&{RANGE}")

    (chat,) = response.context["rows"]
    assert (chat.credits, chat.revenue_minor, chat.cogs_minor) == (
        D("1000"),
        D("1000.00000000"),
        D("301.00000000"),
    )
    assert staff.get("/console/margin/?tenant=999999").status_code == 404
    assert staff.get("/console/margin/?tenant=x").status_code == 404


@pytest.mark.usefixtures("usage")
def test_the_margin_page_names_its_grouping_as_a_person_reads_it(staff: Client) -> None:
    response = staff.get(f"/console/margin/?by=model_class&{RANGE}")
    page = response.content.decode()

    assert "<h1>Margin by model class</h1>" in page
    assert "<th>Model class</th>" in page
    assert '<option value="tenant">customer</option>' in page
