"""The console in a browser (Debian's chromium): every page as staff, with seeded usage, a
screenshot at 1280 and 390 px (var/screenshots/console-*.png) and axe-core's check; the margin
page's CSV downloaded through its link and read against the page's table."""

import csv
from decimal import Decimal
from typing import Any

import pytest

from insights.templatetags.insights_format import credits, minor
from tests.browser import axe_violations, shot

D = Decimal
RANGE = "start=2026-01-01&end=2026-01-31"
# The rate cards' version and simulation pages: tests/insights/test_browser_ratecards.py.
PAGES = [
    "",
    "margin/?by=tenant",
    "margin/?by=day",
    "breakage/",
    "weights/",
    "rate-cards/",
    "reconciliation/",
    "exchange-rates/",
]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("console_usage")
def test_every_console_page_in_a_browser(live_server: Any, console_page: Any) -> None:
    page = console_page
    found: dict[str, list[str]] = {}
    for path in PAGES:
        page.goto(f"{live_server.url}/console/{path}{'&' if '?' in path else '?'}{RANGE}")
        assert page.locator("h1").first.is_visible()
        name = (
            "console-"
            + (path.split("/")[0] or "customers")
            + ("-" + path.split("=")[1] if "=" in path else "")
        )
        shot(page, name)
        found[path] = axe_violations(page)

    assert found == {path: [] for path in PAGES}
    _the_margin_csv_is_the_pages_table(page, live_server.url)


def _table(page: Any) -> list[list[str]]:
    return [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in page.locator("section.card table tbody tr").all()
    ]


def _as_shown(row: dict[str, str]) -> list[str]:
    """A CSV row as the page's table shows it (the same filters)."""
    margin = row["gross_margin_percent"]
    unknown = int(row["events_cost_unknown"])
    return [
        row["name"],
        row["events"],
        credits(D(row["credits"])),
        minor(D(row["revenue_minor"]), row["currency"]),
        minor(D(row["cogs_minor"]), row["cogs_currency"]),
        f"{margin} %" if margin else "—",
        f"{unknown} events, {minor(D(row['revenue_cost_unknown_minor']), row['currency'])}"
        if unknown
        else "—",
    ]


def _the_margin_csv_is_the_pages_table(page: Any, base_url: str) -> None:
    """Issue 13: margin with CSV. The link downloads what the table shows, row by row (in the
    walk's browser: a test of its own would seed and sign in again)."""
    page.goto(f"{base_url}/console/margin/?by=tenant&{RANGE}")
    shown = _table(page)

    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == "margin-tenant-2026-01-01-2026-01-31.csv"
    with open(download.path(), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    assert [
        (r["name"], D(r["credits"]), D(r["revenue_minor"]), D(r["cogs_minor"])) for r in rows
    ] == [
        ("Acme Agents", D(900), D(900), D(600)),
        ("Globex Bots", D(130), D(325), D(2250)),
    ]
    assert shown == [_as_shown(row) for row in rows]
    assert shown == [
        ["Acme Agents", "3", "900.0000", "9.00 USD", "6.00 USD", "33.3 %", "—"],
        ["Globex Bots", "3", "130.0000", "3.25 USD", "22.50 USD", "-592.3 %", "—"],
    ]
