"""The buckets page: labels from each bucket's source, live ones in consumption order, all of
them (spent and expired too) behind the toggle, a page at a time in a fixed number of queries."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger.models import CreditBucket
from ledger.selectors import bucket_list
from ledger.services import ledger_debit, ledger_grant
from tenants.models import Tenant
from tests.portal.conftest import Login
from tests.portal.tables import table_rows

pytestmark = pytest.mark.django_db

P = CreditBucket.Policy
S = CreditBucket.Source
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def buckets(tenant: Tenant, traveller: time_machine.Traveller) -> dict[str, int]:
    """A rolling promotion (not a contract), a contract grant, a pack spent to nothing, and a
    month of subscription credits that expires."""
    traveller.move_to(T0)
    made = {
        "promo": ledger_grant(
            tenant=tenant,
            credits=25,
            policy=P.ROLLING_12M,
            source=S.PROMOTION,
            external_reference="launch-promo",
        ),
        "contract": ledger_grant(
            tenant=tenant,
            credits=1000,
            policy=P.ROLLING_12M,
            source=S.CONTRACT,
            external_reference="contract-1",
        ),
        "spent": ledger_grant(
            tenant=tenant,
            credits=5,
            policy=P.PERMANENT,
            source=S.TOPUP,
            external_reference="pack-1",
        ),
        "month": ledger_grant(
            tenant=tenant,
            credits=40,
            policy=P.MONTHLY_RESET,
            source=S.SUBSCRIPTION,
            external_reference="sub-2026-01",
            expires_at=T0 + timedelta(days=3),
        ),
    }
    traveller.move_to(T0 + timedelta(days=1))
    # Soonest expiry first: the month's 40, then 5 of the promotion (it expires with the
    # contract, both free, and was granted first).
    ledger_debit(tenant=tenant, amount=Decimal(45), idempotency_key="usage:1")
    return {name: result.bucket.pk for name, result in made.items()}


def test_live_buckets_in_the_order_they_are_spent_labelled_by_source(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    ids = buckets(tenant, frozen_time)

    rows = table_rows(login(tenant, role="member").get("/buckets/"), "Buckets")

    assert rows == [
        [
            f"Promotion #{ids['promo']}",
            "Rolling 12 months",
            "25.0000",
            "20.0000",
            "2026-01-15",
            "2027-01-15 12:00 UTC",
        ],
        [
            f"Contract #{ids['contract']}",
            "Rolling 12 months",
            "1000.0000",
            "1000.0000",
            "2026-01-15",
            "2027-01-15 12:00 UTC",
        ],
        [f"Top-up #{ids['spent']}", "Permanent", "5.0000", "5.0000", "2026-01-15", "Never"],
    ]
    assert [r[0].split(" #")[1] for r in rows] == [str(b.pk) for b in bucket_list(tenant=tenant)]


def test_all_buckets_shows_spent_and_expired_newest_first(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    ids = buckets(tenant, frozen_time)
    ledger_debit(tenant=tenant, amount=Decimal(5), idempotency_key="usage:2")  # the promotion
    frozen_time.move_to(T0 + timedelta(days=4))  # the month has expired (unswept)

    rows = table_rows(login(tenant).get("/buckets/?show=all"), "Buckets")

    by_id = {r[0].split(" #")[1]: (r[1], r[3], r[6]) for r in rows}
    assert [r[0].split(" #")[1] for r in rows] == [
        str(ids[name]) for name in ("month", "spent", "contract", "promo")
    ]
    assert by_id[str(ids["month"])] == ("Monthly reset", "—", "Expired")
    assert by_id[str(ids["promo"])] == ("Rolling 12 months", "15.0000", "Live")
    assert by_id[str(ids["spent"])][2] == "Live"


def test_a_bucket_spent_to_nothing_is_only_under_all(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    frozen_time.move_to(T0)
    pack = ledger_grant(
        tenant=tenant, credits=5, policy=P.PERMANENT, source=S.TOPUP, external_reference="pack-1"
    ).bucket
    ledger_debit(tenant=tenant, amount=Decimal(5), idempotency_key="usage:1")
    client = login(tenant)

    live = table_rows(client.get("/buckets/"), "Buckets")
    every = table_rows(client.get("/buckets/?show=all"), "Buckets")

    assert live == []
    assert every == [
        [f"Top-up #{pack.pk}", "Permanent", "5.0000", "0.0000", "2026-01-15", "Never", "Spent"]
    ]


def test_pages_follow_the_consumption_order_in_constant_queries(
    login: Login, tenant: Tenant
) -> None:
    client = login(tenant)
    grant = 0

    def more(count: int) -> None:
        nonlocal grant
        for _ in range(count):
            grant += 1
            ledger_grant(
                tenant=tenant,
                credits=1 + grant % 3,
                policy=P.MONTHLY_RESET if grant % 2 else P.PERMANENT,
                source=S.PROMOTION,
                external_reference=f"g{grant}",
                expires_at=T0 + timedelta(days=400 + grant % 5) if grant % 2 else None,
            )

    more(1)
    with CaptureQueriesContext(connection) as one:
        client.get("/buckets/")
    more(119)
    seen: list[str] = []
    url: str | None = "/buckets/"
    counts = []
    while url:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        counts.append(len(captured))
        seen += [r[0].split(" #")[1] for r in table_rows(response, "Buckets")]
        nxt = response.context["page"].next_after
        url = f"/buckets/?after={nxt}" if nxt else None

    assert seen == [str(b.pk) for b in bucket_list(tenant=tenant)]
    assert len(seen) == 120
    assert counts[0] == len(one)
    assert counts[1:] == [len(one) + 1] * 2  # and the cursor's row
