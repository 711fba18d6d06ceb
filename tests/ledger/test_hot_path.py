"""The debit is the hot path (every usage event pays through it): keep it lean on purpose."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from ledger.models import CreditBucket
from ledger.selectors import available_get
from ledger.services import ledger_debit
from tenants.models import Tenant
from tests.ledger.factories import bucket_make

pytestmark = pytest.mark.django_db


def test_a_debit_inside_a_callers_transaction_takes_no_savepoint_and_six_statements(
    tenant: Tenant, settings: Settings
) -> None:
    # The ledger's own statements only: listeners belong to the apps that register them.
    settings.CREDITLINE_BALANCE_LISTENERS = []
    bucket_make(tenant=tenant, credits=100)
    bucket_make(tenant=tenant, credits=100, policy=CreditBucket.Policy.PERMANENT, price_minor=900)

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        ledger_debit(tenant=tenant, amount=Decimal("150"), idempotency_key="hot-1")

    statements = [q["sql"] for q in queries.captured_queries]
    # Lock the account, load the buckets, look up the key, insert the transaction, insert
    # its entries, update the buckets drawn: six, whether the debit splits or not.
    assert [s for s in statements if "SAVEPOINT" in s.upper()] == []
    assert len(statements) <= 6, "\n".join(statements)
    assert available_get(tenant=tenant) == Decimal("50")
