"""The app's urls plus the ceiling: a bare DRF endpoint doing one raw-SQL debit. Mounted only
by bench/ingest_settings.py, never by production urls."""

from decimal import Decimal

from django.db import connection
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from config.urls import urlpatterns as app_urlpatterns
from tenants.api.base import TenantApiView


class CeilingDebitApi(TenantApiView):
    """Same stack as the usage API (DRF, API key auth, JSON in and out), one UPDATE ...
    RETURNING on one hot row: what any debit endpoint on this machine costs at least."""

    def post(self, request: Request) -> Response:
        amount = Decimal(str(request.data.get("quantity", 1)))
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE bench_balance SET balance = balance - %s WHERE id = 1 RETURNING balance",
                [amount],
            )
            (balance,) = cursor.fetchone()
        return Response({"balance_after": str(balance)}, status=201)


urlpatterns = [path("bench/ceiling", CeilingDebitApi.as_view()), *app_urlpatterns]
