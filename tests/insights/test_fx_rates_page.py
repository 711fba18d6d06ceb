"""The console's exchange-rate page: every rate newest first and each pair's rate in force
today; adding one needs `insights.add_exchangerate` (the form is not shown without it and a
POST is 403, nothing added), is logged with the user and the source, and is one per pair and
day; the admin lists and corrects them."""

import logging
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import User
from django.test import Client

from insights.fx import rate_in_force
from insights.models import ExchangeRate
from insights.staff_actions import staff_exchange_rate_add
from tests.insights.conftest import StaffLogin

pytestmark = pytest.mark.django_db
D = Decimal
URL = "/console/exchange-rates/"
BODY = {
    "from_currency": "usd",
    "to_currency": "EUR",
    "rate": "0.92",
    "effective_on": "2026-01-01",
    "source": "ECB reference rate",
}


def test_staff_without_the_permission_see_the_rates_but_cannot_add_one(
    staff_login: StaffLogin,
) -> None:
    client, _ = staff_login()

    page = client.get(URL)
    post = client.post(URL, BODY)

    assert page.status_code == 200
    assert page.context["form"] is None
    assert b"Add a rate" not in page.content
    assert post.status_code == 403
    assert b"needs the permission insights.add_exchangerate" in post.content
    assert not ExchangeRate.objects.exists()
    assert not LogEntry.objects.exists()


def test_a_rate_added_is_kept_logged_and_listed(
    caplog: pytest.LogCaptureFixture, staff_login: StaffLogin
) -> None:
    client, user = staff_login("add_exchangerate")

    with (
        time_machine.travel("2026-01-15 09:30:00+00:00", tick=False),
        caplog.at_level(logging.INFO, logger="insights.staff"),
    ):
        response = client.post(URL, BODY)
        page = client.get(URL)

    assert response.status_code == 302
    assert response["Location"] == URL
    (rate,) = ExchangeRate.objects.all()
    assert (rate.from_currency, rate.to_currency, rate.rate, rate.effective_on) == (
        "USD",
        "EUR",
        D("0.920000000000"),
        date(2026, 1, 1),
    )
    assert (rate.source, rate.created_by) == ("ECB reference rate", user)
    (entry,) = LogEntry.objects.all()
    assert (entry.user, entry.action_flag, entry.object_id) == (user, ADDITION, str(rate.pk))
    assert entry.change_message == "added 1 USD = 0.92 EUR from 2026-01-01: ECB reference rate"
    assert f"staff {user.username} ({user.pk}) insights.ExchangeRate: added 1 USD" in caplog.text
    assert [r.pk for r in page.context["in_force"]] == [rate.pk]
    assert [r.pk for r in page.context["rates"].rows] == [rate.pk]
    assert b"1 USD \xe2\x86\x92 EUR" in page.content
    assert b">0.92<" in page.content
    assert b"Added: 1 USD = 0.92 EUR from 2026-01-01." in page.content


def test_one_rate_per_pair_and_day_and_a_bad_form_is_422(staff_login: StaffLogin) -> None:
    client, _ = staff_login("add_exchangerate")
    assert client.post(URL, BODY).status_code == 302

    again = client.post(URL, {**BODY, "rate": "0.95"})
    same = client.post(URL, {**BODY, "to_currency": "usd"})
    bad = client.post(URL, {**BODY, "rate": "0", "from_currency": "US"})
    unknown = client.post(URL, {**BODY, "from_currency": "NaN"})
    far = client.post(URL, {**BODY, "effective_on": "9999-12-31"})

    assert again.status_code == 422
    assert b"This pair already has a rate on that day: correct it in the admin." in again.content
    assert same.status_code == 422
    assert b"A rate converts between two currencies." in same.content
    assert bad.status_code == 422
    assert b"A three-letter ISO 4217 code, e.g. USD." in bad.content
    assert unknown.status_code == 422
    assert b"NAN is not an ISO 4217 currency." in unknown.content
    assert far.status_code == 422
    assert b"From 1970 to a year from today." in far.content
    assert ExchangeRate.objects.get().rate == D("0.92")


def test_the_rate_in_force_is_the_latest_on_or_before_the_day() -> None:
    user = User.objects.create_superuser("boss")
    for effective, rate in (("2026-01-01", "0.92"), ("2026-01-14", "0.95")):
        staff_exchange_rate_add(
            user=user,
            from_currency="USD",
            to_currency="EUR",
            rate=D(rate),
            effective_on=date.fromisoformat(effective),
            source="ECB",
        )

    def on(day: str) -> Decimal | None:
        found = rate_in_force(from_currency="USD", to_currency="EUR", day=date.fromisoformat(day))
        return found.rate if found else None

    assert on("2025-12-31") is None
    assert on("2026-01-01") == D("0.92")
    assert on("2026-01-13") == D("0.92")
    assert on("2026-01-14") == D("0.95")
    assert on("2026-03-01") == D("0.95")
    assert rate_in_force(from_currency="EUR", to_currency="USD", day=date(2026, 3, 1)) is None


def test_the_admin_lists_and_adds_rates() -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("boss"))

    added = client.post(
        "/admin/insights/exchangerate/add/",
        {**BODY, "from_currency": "gbp", "rate": "1.17"},
    )
    listed = client.get("/admin/insights/exchangerate/")
    far = client.post("/admin/insights/exchangerate/add/", {**BODY, "effective_on": "9999-12-31"})
    unknown = client.post("/admin/insights/exchangerate/add/", {**BODY, "to_currency": "XYZ"})

    assert added.status_code == 302
    rate = ExchangeRate.objects.get()
    assert (rate.from_currency, rate.to_currency, rate.rate) == ("GBP", "EUR", D("1.17"))
    assert rate.created_by == User.objects.get(username="boss")
    assert listed.status_code == 200
    assert b"ECB reference rate" in listed.content
    assert b"From 1970 to a year from today." in far.content
    assert b"XYZ is not an ISO 4217 currency." in unknown.content
    assert ExchangeRate.objects.count() == 1
