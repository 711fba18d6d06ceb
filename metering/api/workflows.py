"""The workflow API: start, list, read, step, complete, cancel. `{workflow_id}` is the run's id
(the list takes `?external_id=` to find a run by the integration's own id)."""

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from metering.api.usage import UsageInputSerializer
from metering.exceptions import InvalidUsage
from metering.models import WorkflowRun
from metering.services import usage_input_parse
from metering.usage.inputs import UNKNOWN_FIELD, printable
from metering.workflow_selectors import WorkflowDetail, workflow_detail_get, workflow_list
from metering.workflows import (
    workflow_cancel,
    workflow_complete,
    workflow_start,
    workflow_step,
)
from tenants.api.base import TenantApiView
from tenants.api.pagination import CreatedCursorPagination


def _credits(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=18, decimal_places=4, **kwargs)


@extend_schema_serializer(component_name="WorkflowRun")
class _RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    name = serializers.CharField()
    state = serializers.CharField()
    reserved_credits = _credits()
    credits_charged = _credits()
    steps_charged = serializers.IntegerField()
    suspension_reason = serializers.CharField()
    resume_from_step = serializers.CharField(source="suspended_at_step")
    resumable_at = serializers.DateTimeField(allow_null=True)
    metadata = serializers.JSONField()
    created_at = serializers.DateTimeField()
    last_activity_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="WorkflowStep")
class _StepSerializer(serializers.Serializer):
    step_index = serializers.IntegerField()
    idempotency_key = serializers.CharField()
    action = serializers.CharField()
    model_class = serializers.CharField()
    quantity = _credits()
    outcome = serializers.CharField()
    credits = _credits()
    occurred_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="WorkflowDetail")
class _DetailSerializer(_RunSerializer):
    """A run with its steps and what is left of its hold (rendered from a WorkflowDetail)."""

    hold_remaining = _credits()
    steps = _StepSerializer(many=True)

    def to_representation(self, instance: WorkflowDetail) -> dict[str, Any]:
        data: dict[str, Any] = dict(_RunSerializer(instance.run).data)
        data["hold_remaining"] = f"{instance.hold_remaining:.4f}"
        data["steps"] = _StepSerializer(instance.steps, many=True).data
        return data


def _refuse_unknown_fields(raw: Any, serializer: serializers.Serializer) -> None:
    """DRF ignores fields a serializer does not have; a misspelt one is refused instead."""
    for name in raw if isinstance(raw, dict) else ():
        if name not in serializer.fields:
            raise InvalidUsage(printable(str(name)), UNKNOWN_FIELD)


def _detail(view: TenantApiView, run: WorkflowRun) -> dict[str, Any]:
    return _DetailSerializer(workflow_detail_get(tenant=view.tenant, run=run)).data


class WorkflowStartApi(TenantApiView):
    # Beyond the errors every operation lists (tenants/api/schema.py).
    error_statuses = {
        "POST": {
            402: "Under the soft cap (`soft_cap_reached`), the reservation cannot be held "
            "(`insufficient_credits`), or the subscription is unpaid past its grace days "
            "(`subscription_past_due`).",
            409: "The external_id was started with another body (`idempotency_conflict`).",
        }
    }

    @extend_schema_serializer(component_name="WorkflowStartInput")
    class InputSerializer(serializers.Serializer):
        external_id = serializers.CharField(max_length=200)
        name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
        reserve_credits = _credits(required=False, allow_null=True, min_value=Decimal("0.0001"))
        metadata = serializers.DictField(required=False, default=dict)

    @extend_schema(
        request=InputSerializer,
        responses={201: _DetailSerializer, 200: _DetailSerializer},
        summary="Start a workflow run (a replayed external_id returns the run)",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _refuse_unknown_fields(request.data, data)
        run, created = workflow_start(tenant=self.tenant, **data.validated_data)
        return Response(
            _detail(self, run), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class WorkflowListApi(TenantApiView):
    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=WorkflowRun.State.choices, required=False)
        external_id = serializers.CharField(required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=WorkflowRun.State.values),
            OpenApiParameter("external_id", str),
        ],
        responses=_RunSerializer(many=True),
        summary="Workflow runs, newest first (cursor-paginated)",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        runs = workflow_list(tenant=self.tenant, **filters.validated_data)
        paginator = CreatedCursorPagination()
        page = paginator.paginate_queryset(runs, request, view=self)
        return paginator.get_paginated_response(_RunSerializer(page, many=True).data)


class WorkflowDetailApi(TenantApiView):
    @extend_schema(responses=_DetailSerializer, summary="A run: state, steps, credits")
    def get(self, request: Request, workflow_id: str) -> Response:
        run = self.get_scoped_or_404(WorkflowRun, pk=workflow_id)
        return Response(_detail(self, run))


class WorkflowStepApi(TenantApiView):
    error_statuses = {
        "POST": {
            402: "The step cannot be paid: the run is suspended until credits arrive "
            "(`insufficient_credits`).",
            409: "The run is not running, another step must be replayed first "
            "(`resume_step_required`), or the key was used with another body.",
        }
    }

    @extend_schema_serializer(component_name="WorkflowStepResult")
    class OutputSerializer(serializers.Serializer):
        step = _StepSerializer()
        workflow = _RunSerializer()
        replayed = serializers.BooleanField()

    @extend_schema(
        request=UsageInputSerializer,
        responses={201: OutputSerializer, 200: OutputSerializer},
        summary="An idempotent step; 402 and state `suspended` when it cannot be paid",
    )
    def post(self, request: Request, workflow_id: str) -> Response:
        run = self.get_scoped_or_404(WorkflowRun, pk=workflow_id)
        # A step is a usage event: the same parsing, the same defaults (quantity 1), the same
        # refusal of fields it does not have.
        data = usage_input_parse(request.data)
        result = workflow_step(tenant=self.tenant, run=run, data=data)
        body = self.OutputSerializer(
            {"step": result.event, "workflow": result.run, "replayed": result.replayed}
        ).data
        if result.replayed:
            return Response(body, headers={"Idempotent-Replayed": "true"})
        return Response(body, status=status.HTTP_201_CREATED)


class WorkflowCompleteApi(TenantApiView):
    error_statuses = {"POST": {409: "The run has already ended (`illegal_transition`)."}}

    @extend_schema(request=None, responses=_DetailSerializer, summary="Complete a running run")
    def post(self, request: Request, workflow_id: str) -> Response:
        run = self.get_scoped_or_404(WorkflowRun, pk=workflow_id)
        return Response(_detail(self, workflow_complete(tenant=self.tenant, run=run)))


class WorkflowCancelApi(TenantApiView):
    error_statuses = {"POST": {409: "The run has already ended (`illegal_transition`)."}}

    @extend_schema(request=None, responses=_DetailSerializer, summary="Cancel a run")
    def post(self, request: Request, workflow_id: str) -> Response:
        run = self.get_scoped_or_404(WorkflowRun, pk=workflow_id)
        return Response(_detail(self, workflow_cancel(tenant=self.tenant, run=run)))


class WorkflowCollectionApi(WorkflowListApi, WorkflowStartApi):
    """`/workflows` routes GET to the list and POST to the start; each keeps its own class."""
