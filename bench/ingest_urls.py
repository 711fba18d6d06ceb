"""The app's urls plus the ceilings: bare DRF endpoints doing raw SQL. Mounted only by
bench/ingest_settings.py, never by production urls.

Both sit on the same stack as the usage API (DRF, TenantApiView so the same cached API-key
auth, JSON in and out): what any endpoint on this machine costs at least.
"""

import json
from decimal import Decimal

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.urls import path
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from config.urls import urlpatterns as app_urlpatterns
from tenants.api.base import TenantApiView

# bench_event (bench/ingest_seed.py) has the columns, checks, unique key and indexes of
# metering_usageevent as of issue 9; the columns not sent here are constants of the batch.
RAW_BATCH_INSERT = """
INSERT INTO bench_event (
    tenant_id, idempotency_key, request_hash, action, model_class, quantity, occurred_at,
    labels, outcome, credits, rate_card_version_id, buckets, input_tokens, output_tokens,
    tool_calls, vector_reads, orchestration_runs, cogs_minor, cogs_currency, revenue_minor,
    revenue_currency, available_after, created_at
)
SELECT %(tenant)s, u.key, %(hash)s, u.action, '', u.quantity, %(now)s, u.labels, 'success',
       u.quantity, 0, '[]', u.input_tokens, u.output_tokens, 0, 0, 0, 0, 'USD', 0, 'USD',
       %(balance)s, %(now)s
FROM unnest(%(keys)s::text[], %(actions)s::text[], %(quantities)s::numeric[],
            %(inputs)s::bigint[], %(outputs)s::bigint[], %(labels)s::jsonb[])
     AS u(key, action, quantity, input_tokens, output_tokens, labels)
"""
HASH = "0" * 64


def _debit(cursor: CursorWrapper, amount: Decimal) -> Decimal:
    cursor.execute(
        "UPDATE bench_balance SET balance = balance - %s WHERE id = 1 RETURNING balance",
        [amount],
    )
    (balance,) = cursor.fetchone()
    return Decimal(balance)


class CeilingDebitApi(TenantApiView):
    """*Bare debit*: one UPDATE ... RETURNING on one hot row."""

    def post(self, request: Request) -> Response:
        amount = Decimal(str(request.data.get("quantity", 1)))
        with connection.cursor() as cursor:
            balance = _debit(cursor, amount)
        return Response({"balance_after": str(balance)}, status=201)


class RawBatchApi(TenantApiView):
    """*Raw batch*: one UPDATE of the hot row by the batch's total and one INSERT ... SELECT
    FROM unnest of the batch's event-shaped rows, in one transaction."""

    def post(self, request: Request) -> Response:
        events = request.data["events"]
        quantities = [Decimal(str(e.get("quantity", 1))) for e in events]
        with transaction.atomic(), connection.cursor() as cursor:
            balance = _debit(cursor, sum(quantities, Decimal(0)))
            cursor.execute(
                RAW_BATCH_INSERT,
                {
                    "tenant": self.tenant.pk,
                    "hash": HASH,
                    "now": timezone.now(),
                    "balance": balance,
                    "keys": [e["idempotency_key"] for e in events],
                    "actions": [e["action"] for e in events],
                    "quantities": quantities,
                    "inputs": [e.get("input_tokens", 0) for e in events],
                    "outputs": [e.get("output_tokens", 0) for e in events],
                    "labels": [json.dumps(e.get("labels", {})) for e in events],
                },
            )
        return Response({"count": len(events), "balance_after": str(balance)}, status=201)


urlpatterns = [
    path("bench/ceiling", CeilingDebitApi.as_view()),
    path("bench/raw-batch", RawBatchApi.as_view()),
    *app_urlpatterns,
]
