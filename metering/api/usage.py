"""The usage API: report one event or a batch, list them.

Both POST endpoints parse with `usage_input_parse` and render with `usage_event_body` rather
than DRF serializers, so that a batch item and a single event say exactly the same thing and a
batch of 1,000 parses and renders in a few milliseconds (DRF serializers cost ~100 µs an
event). The nested serializers below describe the same bodies for the OpenAPI schema; a test
keeps their fields and the rendered keys equal.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from metering.exceptions import BatchTooLarge, InvalidUsage
from metering.models import UsageEvent, WorkflowRun
from metering.selectors import usage_event_list
from metering.services import (
    BATCH_LIMIT,
    COMPONENT_LIMITS,
    COMPONENTS,
    GPU_SECONDS,
    GPU_SECONDS_QUANTUM,
    MAX_GPU_SECONDS,
    Event,
    PriorEvents,
    UsageInput,
    clean_text,
    usage_event_record,
    usage_event_record_batch,
    usage_input_parse,
    usage_prior_query,
    usage_prior_read,
)
from tenants.api.base import TenantApiView
from tenants.api.errors import error_body
from tenants.api.fields import BIGINT_MAX
from tenants.api.pagination import CreatedCursorPagination
from tenants.api.parsers import ItemCheckedJSONParser
from tenants.cache import Companion
from tenants.exceptions import CreditlineError

REPLAYED_HEADER = "Idempotent-Replayed"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _dec(value: Decimal) -> str:
    # Never scientific notation: str(Decimal("0.00000000")) would be "0E-8".
    return f"{value:f}"


def usage_event_body(event: Event) -> dict[str, Any]:
    """What POST returns for a new event, and what a replay returns again."""
    version = event.rate_card_version
    return {
        "id": event.pk,
        "idempotency_key": event.idempotency_key,
        "action": event.action,
        "model_class": event.model_class,
        "quantity": _dec(event.quantity),
        "occurred_at": _iso(event.occurred_at),
        "outcome": event.outcome,
        "labels": event.labels,
        "workflow_run": event.workflow_run_id,
        "step_index": event.step_index,
        "credits": _dec(event.credits),
        "rate_card_version": {"id": version.pk, "number": version.number},
        "buckets": event.buckets,
        "balance_after": _dec(event.available_after),
        "components": {
            **{name: getattr(event, name) for name in COMPONENTS if name != GPU_SECONDS},
            # To the millisecond, so that a new event and its replay read the same.
            GPU_SECONDS: _dec(event.gpu_seconds.quantize(GPU_SECONDS_QUANTUM)),
        },
        "created_at": _iso(event.created_at),
    }


def _error_of(exc: CreditlineError) -> dict[str, Any]:
    return error_body(exc.code, exc.message, **exc.details)


# ---------------------------------------------------------------------------------------------
# Schema-only serializers (see the module docstring)


class UsageInputSerializer(serializers.Serializer):
    """A usage event's body (a workflow step's too). Fields not listed here are refused."""

    idempotency_key = serializers.CharField(max_length=255)
    action = serializers.CharField(max_length=64)
    quantity = serializers.DecimalField(
        max_digits=18,
        decimal_places=4,
        min_value=Decimal("0.0001"),
        required=False,
        help_text="Default 1. A JSON number, or a string in plain decimal notation.",
    )
    model_class = serializers.CharField(max_length=64, required=False, allow_blank=True)
    occurred_at = serializers.DateTimeField(
        required=False, help_text="Default now; at most 5 minutes ahead, 35 days back."
    )
    outcome = serializers.ChoiceField(choices=UsageEvent.Outcome.choices, required=False)
    labels = serializers.DictField(required=False, help_text="e.g. end user, project")
    input_tokens = serializers.IntegerField(
        min_value=0, max_value=COMPONENT_LIMITS["input_tokens"], required=False
    )
    output_tokens = serializers.IntegerField(
        min_value=0, max_value=COMPONENT_LIMITS["output_tokens"], required=False
    )
    tool_calls = serializers.IntegerField(
        min_value=0, max_value=COMPONENT_LIMITS["tool_calls"], required=False
    )
    vector_reads = serializers.IntegerField(
        min_value=0, max_value=COMPONENT_LIMITS["vector_reads"], required=False
    )
    orchestration_runs = serializers.IntegerField(
        min_value=0, max_value=COMPONENT_LIMITS["orchestration_runs"], required=False
    )
    gpu_seconds = serializers.DecimalField(
        max_digits=15,
        decimal_places=3,
        min_value=Decimal(0),
        max_value=MAX_GPU_SECONDS,
        required=False,
        help_text="GPU time in seconds, to the millisecond (a number or a decimal string).",
    )


class _VersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()


class _BucketDrawnSerializer(serializers.Serializer):
    bucket_id = serializers.IntegerField()
    credits = serializers.CharField()
    policy = serializers.CharField()


class _ComponentsSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    tool_calls = serializers.IntegerField()
    vector_reads = serializers.IntegerField()
    orchestration_runs = serializers.IntegerField()
    gpu_seconds = serializers.CharField(help_text="GPU seconds, a decimal string.")


class UsageEventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    idempotency_key = serializers.CharField()
    action = serializers.CharField()
    model_class = serializers.CharField()
    quantity = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    outcome = serializers.CharField()
    labels = serializers.DictField()
    workflow_run = serializers.IntegerField(allow_null=True)
    step_index = serializers.IntegerField(allow_null=True)
    credits = serializers.CharField()
    rate_card_version = _VersionSerializer()
    buckets = _BucketDrawnSerializer(many=True)
    balance_after = serializers.CharField(help_text="Available credits right after the debit.")
    components = _ComponentsSerializer()
    created_at = serializers.DateTimeField()


# ---------------------------------------------------------------------------------------------
# Views


def _keys_sent(events: Any) -> list[str]:
    """The idempotency keys of the events sent that could be valid ones (clean text of 1 to 255
    characters), in a list that is not too long; the others are refused before any lookup."""
    if not isinstance(events, list) or len(events) > BATCH_LIMIT:
        return []
    keys = []
    for event in events:
        key = event.get("idempotency_key") if isinstance(event, dict) else None
        if isinstance(key, str) and 0 < len(key) <= 255 and clean_text(key):
            keys.append(key)
    return keys


class _KeysLookedUpWithTheStamp(TenantApiView):
    """A POST of events looks their keys up in the statement that reads the config stamp
    (TenantApiView.stamp_companion): a replay is answered after that one round trip."""

    _looked_up: tuple[int, list[str]] | None = None

    def events_sent(self, data: Any) -> Any:
        raise NotImplementedError

    def stamp_companion(self, request: Request, *, tenant_id: int) -> Companion | None:
        if request.method != "POST":
            return None
        keys = _keys_sent(self.events_sent(request.data))
        if not keys:
            return None
        self._looked_up = (tenant_id, keys)
        return usage_prior_query(tenant_id=tenant_id, keys=keys)

    def prior(self) -> PriorEvents | None:
        if self._looked_up is None or self.companion_rows is None:
            return None
        tenant_id, keys = self._looked_up
        return usage_prior_read(tenant_id=tenant_id, keys=keys, rows=self.companion_rows)


class UsageEventCreateApi(_KeysLookedUpWithTheStamp):
    # Beyond the errors every operation lists (tenants/api/schema.py).
    error_statuses = {
        "POST": {
            402: "Not enough credits (`insufficient_credits`); nothing was recorded.",
            409: "The key was used with another body (`idempotency_conflict`).",
        }
    }

    def events_sent(self, data: Any) -> Any:
        return [data]

    @extend_schema(
        request=UsageInputSerializer,
        responses={201: UsageEventOutputSerializer, 200: UsageEventOutputSerializer},
        summary="Report one usage event (idempotent on idempotency_key)",
    )
    def post(self, request: Request) -> Response:
        data = usage_input_parse(request.data)
        result = usage_event_record(tenant=self.tenant, data=data, prior=self.prior())
        body = usage_event_body(result.event)
        if result.replayed:
            return Response(body, status=status.HTTP_200_OK, headers={REPLAYED_HEADER: "true"})
        return Response(body, status=status.HTTP_201_CREATED)


class UsageEventBatchApi(_KeysLookedUpWithTheStamp):
    # Metering checks every string of every event (a NUL, a lone surrogate) and refuses only
    # that event, in its own result slot.
    parser_classes = [ItemCheckedJSONParser]

    class InputSerializer(serializers.Serializer):
        events = UsageInputSerializer(many=True, help_text=f"At most {BATCH_LIMIT}.")

    class OutputSerializer(serializers.Serializer):
        class ItemSerializer(serializers.Serializer):
            status = serializers.IntegerField(help_text="201, 200 (replay), 402, 409 or 422")
            body = serializers.DictField(help_text="The event, or {'error': {...}}")

        results = ItemSerializer(many=True)

    def events_sent(self, data: Any) -> Any:
        return data.get("events") if isinstance(data, dict) else None

    @extend_schema(
        request=InputSerializer,
        responses=OutputSerializer,
        summary="Report up to 1,000 usage events: a result per event, in order",
    )
    def post(self, request: Request) -> Response:
        raw = request.data.get("events") if isinstance(request.data, dict) else None
        if not isinstance(raw, list):
            raise InvalidUsage("events", "Must be a list of events.")
        unknown = sorted(set(request.data) - {"events"})
        if unknown:
            raise InvalidUsage(unknown[0], "Unknown field: a batch has only `events`.")
        if len(raw) > BATCH_LIMIT:
            raise BatchTooLarge(limit=BATCH_LIMIT, received=len(raw))
        parsed: list[UsageInput] = []
        where: list[int] = []
        results: list[dict[str, Any] | None] = [None] * len(raw)
        for index, item in enumerate(raw):
            try:
                parsed.append(usage_input_parse(item))
            except InvalidUsage as exc:
                results[index] = {"status": exc.status_code, "body": _error_of(exc)}
            else:
                where.append(index)
        recorded = usage_event_record_batch(tenant=self.tenant, items=parsed, prior=self.prior())
        for index, result in zip(where, recorded, strict=True):
            if result.event is not None:
                body = usage_event_body(result.event)
            elif result.error is not None:
                body = _error_of(result.error)
            else:
                raise RuntimeError(f"Batch item {index} came back with neither event nor error.")
            results[index] = {"status": result.status, "body": body}
        return Response({"results": results})


class UsageEventListApi(TenantApiView):
    class FilterSerializer(serializers.Serializer):
        action = serializers.CharField(required=False)
        since = serializers.DateTimeField(required=False, help_text="occurred_at >= since")
        until = serializers.DateTimeField(required=False, help_text="occurred_at < until")
        workflow_run = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)

    @extend_schema(
        parameters=[FilterSerializer],
        responses=UsageEventOutputSerializer(many=True),
        summary="Usage events, newest first (cursor-paginated)",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = dict(filters.validated_data)
        run_id = params.pop("workflow_run", None)
        run = self.get_scoped_or_404(WorkflowRun, pk=run_id) if run_id is not None else None
        events = usage_event_list(tenant=self.tenant, workflow_run=run, **params)
        paginator = CreatedCursorPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response([usage_event_body(e) for e in page or []])


class UsageEventCollectionApi(UsageEventListApi, UsageEventCreateApi):
    """`/usage-events` routes GET to the list and POST to the create; each keeps its class."""
