"""The ledger over REST: balance, statement, buckets. Thin: parse, call a selector, render."""

from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from ledger.models import EntryKind
from ledger.rollup_selectors import BURN_WINDOWS, burn_rate_get
from ledger.selectors import BUCKETS_EMBEDDED, balance_get, bucket_list, entry_list
from tenants.api.base import TenantApiView
from tenants.api.pagination import CreatedCursorPagination
from tenants.events import tenant_settings_get


def credits(**kwargs: Any) -> serializers.DecimalField:
    """Credits as strings with 4 decimal places ("12.5000"), never floats."""
    return serializers.DecimalField(max_digits=18, decimal_places=4, **kwargs)


class BucketSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.source
    policy = serializers.CharField()
    granted = credits()
    remaining = credits()
    granted_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class BurnRateSerializer(serializers.Serializer):
    """Average credits spent per day (debits less refunds) over the last 7 and 30 UTC days,
    today counting for the part of it that has passed. Keys "7d" and "30d"."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            f"{days}d": credits(source=f"per_day_{days}d", help_text=f"Over {days} days.")
            for days in BURN_WINDOWS
        }


class BalanceGetApi(TenantApiView):
    # `buckets` embeds only the first live buckets in consumption order (ledger.selectors
    # BUCKETS_EMBEDDED): a balance read is O(1) whatever the number of buckets. All of them
    # are paged at /api/v1/buckets; the field stays one release, deprecated (README).
    # `soft_cap` and `alert_thresholds` are metering's and billing's settings now: they stay one
    # release, deprecated, answered by those apps through tenants.events.tenant_settings.
    @extend_schema_serializer(deprecate_fields=["buckets", "soft_cap", "alert_thresholds"])
    class OutputSerializer(serializers.Serializer):
        class OverdraftSerializer(serializers.Serializer):
            used = credits(source="overdraft_used")
            limit = credits(source="overdraft_limit")

        class NextExpirySerializer(serializers.Serializer):
            at = serializers.DateTimeField(source="next_expiry_at")
            amount = credits(source="next_expiry_amount")

        as_of = serializers.DateTimeField()
        available = credits()
        reserved = credits()
        overdraft = OverdraftSerializer(source="*")
        by_policy = serializers.DictField(child=credits())
        next_expiry = serializers.SerializerMethodField()
        topped_up_to = credits(
            help_text="What the tenant was last topped up to: the available balance right "
            "after its latest grant (a refund may raise it). Alerts and the default soft cap "
            "are percentages of it."
        )
        soft_cap = credits(
            required=False, help_text="Deprecated: soft_cap_effective at /api/v1/workflow-settings."
        )
        alert_thresholds = serializers.ListField(
            child=serializers.IntegerField(),
            required=False,
            help_text="Deprecated: see /api/v1/alert-settings.",
        )
        buckets = BucketSerializer(
            many=True,
            help_text=f"Deprecated: the first {BUCKETS_EMBEDDED} live buckets only; "
            "all of them are paged at buckets_url.",
        )
        buckets_url = serializers.SerializerMethodField()
        burn_rate = BurnRateSerializer(
            help_text="From daily totals kept within a minute of the ledger, never the entries."
        )
        display = serializers.DictField(
            help_text='How the tenant sees its credits: {"unit": "credits"}, or for '
            'invisible credits {"unit": "money", "currency", "minor_per_credit", '
            '"available_minor"} (the available balance in minor units, ROUND_HALF_UP).',
        )
        runs_out_at = serializers.DateTimeField(
            allow_null=True,
            help_text="When the available balance runs out at the 7-day pace (the 30-day one "
            "when the last 7 days spent nothing); null when there is no usage to project from.",
        )

        def get_buckets_url(self, balance: Any) -> str:
            return "/api/v1/buckets"

        def get_next_expiry(self, balance: Any) -> dict[str, Any] | None:
            if balance.next_expiry_at is None:
                return None
            return dict(self.NextExpirySerializer(balance).data)

    @extend_schema(responses=OutputSerializer, summary="The tenant's credit balance now")
    def get(self, request: Request) -> Response:
        balance = balance_get(tenant=self.tenant)
        burn = burn_rate_get(tenant=self.tenant, available=balance.available, at=balance.as_of)
        moved = tenant_settings_get(
            tenant=self.tenant, names=["soft_cap_effective", "alert_thresholds", "credit_display"]
        )
        # Under their old names (the balance's `soft_cap` was the cap in force); an answer
        # missing (no app owns it) leaves its field out.
        old_names = {"soft_cap": "soft_cap_effective", "alert_thresholds": "alert_thresholds"}
        deprecated = {old: moved[new] for old, new in old_names.items() if new in moved}
        body = SimpleNamespace(
            **vars(balance),
            burn_rate=burn,
            runs_out_at=burn.runs_out_at,
            display=_display(moved.get("credit_display"), balance.available),
            **deprecated,
        )
        return Response(self.OutputSerializer(body).data)


def _display(shown: dict[str, Any] | None, available: Decimal) -> dict[str, Any]:
    """Credits, unless the app that owns the setting (billing) shows this tenant money: then
    the available balance in minor units of its currency (the ledger stays in credits)."""
    if not shown or shown.get("unit") != "money":
        return {"unit": "credits"}
    per_credit = Decimal(shown["minor_per_credit"])
    worth = (available * per_credit).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return {**shown, "available_minor": int(worth)}


class EntryListApi(TenantApiView):
    class InputSerializer(serializers.Serializer):
        kind = serializers.ListField(
            child=serializers.ChoiceField(choices=EntryKind.choices), required=False
        )
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            since, until = attrs.get("since"), attrs.get("until")
            if since is not None and until is not None and until <= since:
                raise serializers.ValidationError({"until": ["Must be later than since."]})
            return attrs

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        kind = serializers.CharField()
        amount = credits()
        bucket = serializers.IntegerField(source="bucket_id", allow_null=True)
        hold = serializers.IntegerField(source="hold_id", allow_null=True)
        balance_after = credits()
        transaction = serializers.IntegerField(source="transaction_id")
        idempotency_key = serializers.CharField(source="transaction.idempotency_key")
        source_type = serializers.CharField(source="transaction.source_type")
        source_id = serializers.CharField(source="transaction.source_id")
        memo = serializers.CharField(source="transaction.memo")
        created_at = serializers.DateTimeField()

    @extend_schema(
        parameters=[InputSerializer],
        responses=OutputSerializer(many=True),
        summary="The statement: ledger entries, newest first",
    )
    def get(self, request: Request) -> Response:
        params: dict[str, Any] = {
            key: request.query_params[key]
            for key in ("since", "until")
            if key in request.query_params
        }
        kinds = [k for value in request.query_params.getlist("kind") for k in value.split(",")]
        if kinds:
            params["kind"] = kinds
        query = self.InputSerializer(data=params)
        query.is_valid(raise_exception=True)
        entries = entry_list(
            tenant=self.tenant,
            kinds=query.validated_data.get("kind"),
            since=query.validated_data.get("since"),
            until=query.validated_data.get("until"),
        )
        paginator = CreatedCursorPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class BucketListApi(TenantApiView):
    class InputSerializer(serializers.Serializer):
        include_spent = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        parameters=[InputSerializer],
        responses=BucketSerializer(many=True),
        summary="Credit buckets, newest first (spent and expired ones with include_spent)",
    )
    def get(self, request: Request) -> Response:
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        buckets = bucket_list(
            tenant=self.tenant, include_spent=query.validated_data["include_spent"]
        )
        paginator = CreatedCursorPagination()
        page = paginator.paginate_queryset(buckets, request, view=self)
        return paginator.get_paginated_response(BucketSerializer(page, many=True).data)
