"""Rate cards in the console and the simulator: a draft that doubles one rate re-prices a small
seeded set of events to exact figures, twice alike; the task end to end with its progress page;
publishing and the suggested-weights draft need their permissions and are logged; every new
page walked as anonymous, a tenant's owner and staff."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from insights import simulator
from insights.models import Simulation
from insights.rollup import insights_rollup_update
from insights.simulator import simulation_request
from insights.urls import urlpatterns
from metering.services import UsageInput, usage_event_record
from ratecards.models import RateCard, RateCardVersion
from ratecards.services import (
    cost_catalog_version_create_draft,
    cost_price_set,
    rate_set,
    ratecard_assign,
    ratecard_seed_example,
    ratecard_version_create_draft,
)
from tenants.models import OutboxMessage, Tenant
from tenants.outbox import outbox_run
from tenants.services import membership_add
from tests.insights.conftest import StaffLogin
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db

D = Decimal
NOW = "2026-02-01 09:00:00+00:00"


@pytest.fixture
def staff(staff_login: StaffLogin) -> Client:
    return staff_login()[0]


@pytest.fixture
def draft(tenant: Tenant, other_tenant: Tenant) -> RateCardVersion:
    """Jan 10: Acme (credits at 1 cent each) chats x100 (a tool call, 8 cents) and researches
    x2 (two tool calls); Globex (credits at 5 cents each) researches x1 on turbo (1M output
    tokens, $15.00) and chats x10 without cost components. The draft v2 doubles web_research."""
    with time_machine.travel("2026-01-10 12:00:00+00:00", tick=False):
        card = ratecard_seed_example()
        fund(tenant, 1000, price_minor=1000)
        fund(other_tenant, 100, price_minor=500, reference="g")
        for t, key, action, quantity, model_class, components in [
            (tenant, "a", "chat", 100, "", {"tool_calls": 1}),
            (tenant, "b", "web_research", 2, "", {"tool_calls": 2}),
            (other_tenant, "g", "web_research", 1, "turbo", {"output_tokens": 1_000_000}),
            (other_tenant, "h", "chat", 10, "", {}),
        ]:
            usage_event_record(
                tenant=t,
                data=UsageInput(
                    idempotency_key=key,
                    action=action,
                    quantity=D(quantity),
                    model_class=model_class,
                    **components,  # type: ignore[arg-type]
                ),
            )
        insights_rollup_update()
    version = ratecard_version_create_draft(rate_card=card)
    rate_set(version=version, action="web_research", credits_per_unit="20")
    return version


def _simulate(version: RateCardVersion) -> Simulation:
    with time_machine.travel(NOW, tick=False):
        return simulation_request(user=None, version=version, cost_catalog=None, days=90)


def _figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        row[k]
        for k in (
            "events",
            "credits_before",
            "credits_after",
            "revenue_before",
            "revenue_after",
            "cogs_before",
            "cogs_after",
            "margin_before",
            "margin_after",
        )
    )


def _pct(value: str | None) -> Decimal | None:
    return None if value is None else (D(value) * 100).quantize(D("0.1"))


def test_a_draft_that_doubles_one_rate(draft: RateCardVersion, tenant: Tenant) -> None:
    simulation = _simulate(draft)

    assert simulation.status == Simulation.Status.DONE
    assert (simulation.since.isoformat(), simulation.until.isoformat()) == (
        "2025-11-03T00:00:00+00:00",
        "2026-02-01T00:00:00+00:00",
    )
    result = simulation.result
    assert result["events"] == 4
    acme, globex = result["customers"]
    assert (acme["name"], acme["currency"], acme["cogs_currency"]) == ("Acme Agents", "USD", "USD")
    assert _figures(acme)[:7] == (
        2,
        "120.0000",
        "140.0000",
        "120.00000000",
        "140.00000000",
        "24.00000000",
        "24.00000000",
    )
    assert (_pct(acme["margin_before"]), _pct(acme["margin_after"])) == (D("80.0"), D("82.9"))
    assert _figures(globex)[:7] == (
        2,
        "70.0000",
        "130.0000",
        "350.00000000",
        "650.00000000",
        "1500.00000000",
        "1500.00000000",
    )
    # The chat without cost components is in the revenue, not in the margin (cost unknown).
    assert globex["events_without_cost"] == 1
    assert (_pct(globex["margin_before"]), _pct(globex["margin_after"])) == (
        D("-400.0"),
        D("-150.0"),
    )
    (total,) = result["totals"]
    assert _figures(total)[:7] == (
        4,
        "190.0000",
        "270.0000",
        "470.00000000",
        "790.00000000",
        "1524.00000000",
        "1524.00000000",
    )
    assert (_pct(total["margin_before"]), _pct(total["margin_after"])) == (
        D("-262.9"),
        D("-105.9"),
    )
    assert result["most_affected"] == [globex["tenant_id"], tenant.pk]


def test_the_same_draft_and_window_give_the_same_figures(draft: RateCardVersion) -> None:
    first, second = _simulate(draft), _simulate(draft)

    assert first.pk != second.pk
    assert first.result == second.result


def test_a_removed_rate_counts_its_events_as_refused(draft: RateCardVersion) -> None:
    from ratecards.services import rate_delete

    rate_delete(version=draft, action="chat")

    (total,) = _simulate(draft).result["totals"]

    assert (total["events_refused"], total["credits_after"]) == (2, "160.0000")


def test_the_task_end_to_end_with_its_progress_page(
    draft: RateCardVersion, staff: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulator, "INLINE_EVENTS", 0)  # every window goes to the task
    with time_machine.travel(NOW, tick=False):
        response = staff.post("/console/simulations/", {"version": draft.pk, "days": "90"})

    simulation = Simulation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/console/simulations/{simulation.pk}/"
    assert simulation.status == Simulation.Status.PENDING
    waiting = staff.get(f"/console/simulations/{simulation.pk}/")
    assert b'hx-get="?part=progress"' in waiting.content
    assert b"Waiting: 0 of ? customers re-priced." in waiting.content

    (message,) = OutboxMessage.objects.filter(task="insights.simulation_run")
    assert message.kwargs == {"simulation_id": simulation.pk}
    outbox_run(message.pk)

    simulation.refresh_from_db()
    assert (simulation.status, simulation.tenants_done, simulation.events) == ("done", 2, 4)
    assert simulation.result == simulator.simulate(simulation=simulation)
    part = staff.get(f"/console/simulations/{simulation.pk}/?part=progress")
    assert b"hx-get" not in part.content
    assert b"4 events re-priced." in part.content
    assert b"7.90 USD" in part.content  # revenue after, in total
    assert simulator.simulation_run(simulation_id=simulation.pk) == "skipped"


def test_a_changed_draft_marks_its_simulation_stale(draft: RateCardVersion, staff: Client) -> None:
    simulation = _simulate(draft)
    assert b"has changed since" not in staff.get(f"/console/simulations/{simulation.pk}/").content

    rate_set(version=draft, action="chat", credits_per_unit="2")

    assert b"has changed since" in staff.get(f"/console/simulations/{simulation.pk}/").content


def test_the_version_page_shows_the_diff(draft: RateCardVersion, staff: Client) -> None:
    rate_set(version=draft, action="summary", credits_per_unit="2")

    response = staff.get(f"/console/rate-cards/versions/{draft.pk}/")

    changes = [(line.action, line.change) for line in response.context["lines"]]
    assert changes == [
        ("action_execution", "same"),
        ("chat", "same"),
        ("doc_search", "same"),
        ("resolution", "same"),
        ("summary", "added"),
        ("web_research", "changed"),
    ]
    assert response.context["against"].number == 1
    assert b"2 of 6 rates added, removed or changed" in response.content
    assert f'<option value="{response.context["against"].pk}" selected>v1' in response.text


def test_the_first_version_is_compared_with_nothing_and_says_so(
    draft: RateCardVersion, staff: Client
) -> None:
    v1 = draft.rate_card.versions.get(number=1)

    response = staff.get(f"/console/rate-cards/versions/{v1.pk}/")

    assert response.context["against"] is None
    assert '<option value="" selected>nothing (no published version before it)</option>' in (
        response.text
    )
    assert f'<option value="{draft.pk}">v2 (draft)</option>' in response.text


PUBLISH = {"notice_days": "30", "reason": "doubling research: its cost doubled"}


def test_publishing_needs_the_permission(draft: RateCardVersion, staff_login: StaffLogin) -> None:
    response = staff_login()[0].post(f"/console/rate-cards/versions/{draft.pk}/publish/", PUBLISH)

    assert response.status_code == 403
    assert b"This needs the permission ratecards.change_ratecardversion." in response.content
    draft.refresh_from_db()
    assert draft.status == "draft"
    assert not LogEntry.objects.exists()


def test_publishing_with_the_permission_is_logged(
    draft: RateCardVersion, staff_login: StaffLogin
) -> None:
    client, _ = staff_login("ratecards.change_ratecardversion")
    with time_machine.travel(NOW, tick=False):
        refused = client.post(
            f"/console/rate-cards/versions/{draft.pk}/publish/", {"notice_days": "30"}
        )
        draft.refresh_from_db()
        assert (refused.status_code, draft.status) == (302, "draft")
        response = client.post(f"/console/rate-cards/versions/{draft.pk}/publish/", PUBLISH)

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "published"
    assert str(draft.effective_from) == "2026-03-03 09:00:00+00:00"
    (entry,) = LogEntry.objects.all()
    assert (entry.user.username, entry.action_flag, entry.object_id) == (
        "vendor0",
        CHANGE,
        str(draft.pk),
    )
    assert entry.change_message == (
        "published v2 of standard, effective 2026-03-03 09:00 UTC (30 days' notice): "
        "doubling research: its cost doubled"
    )


WEIGHTS = "/console/weights/draft/?start=2026-01-01&end=2026-01-31&target=70&price=1000&step=0.01"


def _reference_run(tenant: Tenant) -> None:
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


def test_suggested_weights_become_a_draft(tenant: Tenant, staff_login: StaffLogin) -> None:
    _reference_run(tenant)
    assert staff_login()[0].post(WEIGHTS, {"reason": "r"}).status_code == 403
    unexplained = staff_login("ratecards.add_ratecardversion")[0].post(WEIGHTS, {"reason": " "})
    assert unexplained.status_code == 302
    assert not RateCardVersion.objects.filter(status="draft").exists()

    response = staff_login("ratecards.add_ratecardversion")[0].post(
        WEIGHTS, {"reason": "70 % margin"}
    )

    new = RateCardVersion.objects.get(status="draft")
    assert response.status_code == 302
    assert response["Location"] == f"/console/rate-cards/versions/{new.pk}/"
    rates = {(r.action, r.model_class): (r.credits_per_unit, r.charge_on) for r in new.rates.all()}
    assert rates[("chat", "")] == (D("1.0100"), "always")
    assert rates[("resolution", "")] == (D("50.0000"), "success")  # the rest as it was
    (entry,) = LogEntry.objects.all()
    assert (entry.action_flag, entry.change_message) == (
        ADDITION,
        "made draft v2 of standard from 1 suggested weights: 70 % margin",
    )
    assert RateCard.objects.get().versions.count() == 2


RATE_CARD_PAGES = [
    p
    for p in urlpatterns
    if p.name in {"ratecards", "version", "publish", "simulate", "simulation", "weights_draft"}
]
GET_PAGES = {"ratecards", "version", "simulation"}


def _walk_urls(version_id: int, simulation_id: int) -> list[str]:
    ids = {"version_id": version_id, "simulation_id": simulation_id}
    return [
        reverse(f"insights:{p.name}", kwargs={k: ids[k] for k in p.pattern.converters})
        for p in RATE_CARD_PAGES
    ]


def test_every_rate_card_page_is_staff_only(
    draft: RateCardVersion, staff: Client, client: Client, tenant: Tenant
) -> None:
    simulation = _simulate(draft)
    urls = _walk_urls(draft.pk, simulation.pk)
    user = User.objects.create_user("owner")
    membership_add(tenant=tenant, user=user, role="owner")
    owner = Client()
    owner.force_login(user)

    assert urls == [
        "/console/rate-cards/",
        f"/console/rate-cards/versions/{draft.pk}/",
        f"/console/rate-cards/versions/{draft.pk}/publish/",
        "/console/simulations/",
        f"/console/simulations/{simulation.pk}/",
        "/console/weights/draft/",
    ]
    for pattern, url in zip(RATE_CARD_PAGES, urls, strict=True):
        method = "get" if pattern.name in GET_PAGES else "post"
        anonymous = getattr(client, method)(url)
        assert (anonymous.status_code, anonymous["Location"].split("?")[0]) == (
            302,
            "/accounts/login/",
        )
        refused = getattr(owner, method)(url)
        assert refused.status_code == 403
        assert b"COGS" not in refused.content
        if method == "get":
            assert staff.get(url).status_code == 200
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_a_draft_cost_catalog_recosts_the_events(draft: RateCardVersion) -> None:
    """Tool calls at 16 cents instead of 8: Acme's three tool calls cost 48 cents; Globex's
    output tokens are as before; its chat without components stays of unknown cost."""
    catalog = cost_catalog_version_create_draft(currency="USD")
    cost_price_set(version=catalog, component="tool_calls", price_minor="16")
    with time_machine.travel(NOW, tick=False):
        simulation = simulation_request(user=None, version=None, cost_catalog=catalog, days=90)

    acme, globex = simulation.result["customers"]
    assert (acme["credits_after"], acme["cogs_before"], acme["cogs_after"]) == (
        "120.0000",
        "24.00000000",
        "48.00000000",
    )
    assert (globex["cogs_after"], globex["events_without_cost"]) == ("1500.00000000", 1)
    assert _pct(acme["margin_after"]) == D("60.0")


def test_money_in_two_currencies_is_never_summed(tenant: Tenant, other_tenant: Tenant) -> None:
    """Acme pays in USD, Globex in EUR, costs are in USD: two totals, and Globex has no
    margin (revenue in EUR against COGS in USD)."""
    with time_machine.travel("2026-01-10 12:00:00+00:00", tick=False):
        card = ratecard_seed_example()
        fund(tenant, 100, price_minor=100)
        fund(other_tenant, 100, price_minor=90, reference="e", currency="EUR")
        for t in (tenant, other_tenant):
            usage_event_record(
                tenant=t,
                data=UsageInput(idempotency_key="k", action="chat", quantity=D(10), tool_calls=1),
            )
    version = ratecard_version_create_draft(rate_card=card)
    rate_set(version=version, action="chat", credits_per_unit="2")

    result = _simulate(version).result

    assert [(t["currency"], t["cogs_currency"], t["revenue_after"]) for t in result["totals"]] == [
        ("EUR", "USD", "18.00000000"),
        ("USD", "USD", "20.00000000"),
    ]
    eur, usd = sorted(result["totals"], key=lambda t: t["currency"])
    assert (eur["margin_before"], eur["margin_after"]) == (None, None)
    assert _pct(usd["margin_after"]) == D("60.0")


def test_a_pinned_customer_is_named_as_such(
    draft: RateCardVersion, other_tenant: Tenant, staff: Client
) -> None:
    """Re-priced like everyone (the figures are a what-if), and said to be pinned."""
    v1 = RateCardVersion.objects.get(number=1)
    with time_machine.travel(NOW, tick=False):
        ratecard_assign(
            tenant=other_tenant,
            rate_card=v1.rate_card,
            mode="pinned",
            pinned_version=v1,
            pinned_until=datetime(2026, 6, 30, tzinfo=UTC),
        )

    acme, globex = _simulate(draft).result["customers"]

    assert (acme["pinned"], globex["pinned"]) == (None, "until 2026-06-30")
    assert globex["credits_after"] == "130.0000"
    page = staff.get(f"/console/rate-cards/versions/{draft.pk}/")
    assert [a.tenant for a in page.context["assigned"]] == [other_tenant]
    assert b"pinned to v1 until 2026-06-30" in page.content


@pytest.mark.parametrize("days", ["abc", "0", "367", "1.5"])
def test_a_window_that_is_no_whole_number_of_days_up_to_366_is_refused(
    draft: RateCardVersion, staff: Client, days: str
) -> None:
    response = staff.post("/console/simulations/", {"version": draft.pk, "days": days}, follow=True)

    assert response.redirect_chain == [(reverse("insights:version", args=[draft.pk]), 302)]
    assert [str(m) for m in response.context["messages"]] == ["The window is 1 to 366 days."]
    assert Simulation.objects.count() == 0


@pytest.mark.parametrize("sent", [{"days": " "}, {}])
def test_a_window_left_empty_or_out_is_the_default(
    draft: RateCardVersion, staff: Client, sent: dict[str, str]
) -> None:
    with time_machine.travel(NOW, tick=False):
        response = staff.post("/console/simulations/", {"version": draft.pk, **sent})

    simulation = Simulation.objects.get()
    assert response["Location"] == f"/console/simulations/{simulation.pk}/"
    assert simulation.until - simulation.since == timedelta(days=simulator.DEFAULT_DAYS)
