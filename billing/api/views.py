"""Billing's REST endpoints: thin, each parses, calls a service or selector, renders.

A path with two methods (list + create, read + update) is one class with two handlers, each
with its own serializers: DRF routes a path to one view.
"""

import re
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.estimates import (
    MAX_MODEL_MIX,
    MAX_MONTHLY_COUNT,
    MAX_ROWS,
    EstimateRow,
    estimate,
)
from billing.models import AutoTopUpPolicy, WebhookEndpoint
from billing.selectors import (
    alert_thresholds_get,
    auto_topup_policy_get,
    pack_get,
    topup_list,
)
from billing.services import (
    alert_settings_update,
    auto_topup_policy_update,
    stripe_event_receive,
    webhook_endpoint_create,
    webhook_endpoint_delete,
)
from billing.services.stripe_payloads import MALFORMED
from billing.services.webhook_targets import WEBHOOK_EVENT_TYPES
from tenants.api.base import TenantApiView
from tenants.api.fields import BIGINT_MAX
from tenants.api.pagination import CreatedCursorPagination
from tenants.events import tenant_settings_get, tenant_settings_set
from tenants.models import ApiKey

SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")


def credits(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=18, decimal_places=4, **kwargs)


class AutoTopUpApi(TenantApiView):
    error_statuses = {"PUT": {409: "Enabling needs a saved payment method (`no_payment_method`)."}}

    required_scope = ApiKey.Scope.BILLING

    @extend_schema_serializer(component_name="AutoTopUp")
    class OutputSerializer(serializers.Serializer):
        enabled = serializers.BooleanField()
        threshold = credits()
        pack = serializers.CharField(source="pack.slug")
        monthly_cap_minor = serializers.IntegerField()
        currency = serializers.CharField(source="pack.currency")
        state = serializers.CharField()
        consecutive_failures = serializers.IntegerField()
        backoff_until = serializers.DateTimeField(allow_null=True)
        disabled_reason = serializers.CharField()
        last_refusal = serializers.CharField()
        last_attempts = serializers.SerializerMethodField()

        def get_last_attempts(self, obj: AutoTopUpPolicy) -> list[dict[str, Any]]:
            recent = topup_list(tenant=obj.tenant).filter(auto=True).order_by("-created_at")[:5]
            return [
                {
                    "id": t.pk,
                    "status": t.status,
                    "amount_minor": t.amount_minor,
                    "credits": str(t.credits),
                    "failure_reason": t.failure_reason,
                    "created_at": t.created_at.isoformat(),
                }
                for t in recent
            ]

    @extend_schema_serializer(component_name="AutoTopUpInput")
    class InputSerializer(serializers.Serializer):
        enabled = serializers.BooleanField()
        threshold = credits(min_value=Decimal(0))
        pack = serializers.SlugField()
        monthly_cap_minor = serializers.IntegerField(min_value=0, max_value=BIGINT_MAX)

    @extend_schema(responses=OutputSerializer, summary="The auto top-up settings and state")
    def get(self, request: Request) -> Response:
        policy = auto_topup_policy_get(tenant=self.tenant)
        if policy is None:
            return Response({"enabled": False, "state": None, "last_attempts": []})
        return Response(self.OutputSerializer(policy).data)

    @extend_schema(
        request=InputSerializer, responses=OutputSerializer, summary="Change auto top-up"
    )
    def put(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        policy = auto_topup_policy_update(
            tenant=self.tenant,
            enabled=values["enabled"],
            threshold=values["threshold"],
            # Priced in the tenant's currency, or refused naming `pack` (the policy's service).
            pack=pack_get(slug=values["pack"]),
            monthly_cap_minor=values["monthly_cap_minor"],
        )
        return Response(self.OutputSerializer(policy).data)


class AlertSettingsApi(TenantApiView):
    # The soft cap is metering's now (/api/v1/workflow-settings); `soft_cap` and
    # `soft_cap_effective` stay here one release, deprecated (README, "API changes"), read and
    # written through tenants.events.tenant_settings.
    @extend_schema_serializer(
        component_name="AlertSettings", deprecate_fields=["soft_cap", "soft_cap_effective"]
    )
    class OutputSerializer(serializers.Serializer):
        alert_thresholds = serializers.ListField(
            child=serializers.IntegerField(),
            help_text="Percent of what the tenant was last topped up to (the balance's "
            "topped_up_to), highest first. Running out (0) is always announced.",
        )
        soft_cap = credits(
            allow_null=True, required=False, help_text="Deprecated: see /api/v1/workflow-settings."
        )
        soft_cap_effective = credits(
            required=False, help_text="Deprecated: see /api/v1/workflow-settings."
        )

    @extend_schema_serializer(component_name="AlertSettingsInput", deprecate_fields=["soft_cap"])
    class InputSerializer(serializers.Serializer):
        alert_thresholds = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=99),
            max_length=10,
            required=False,
        )
        soft_cap = credits(
            min_value=Decimal(0),
            allow_null=True,
            required=False,
            help_text="Deprecated: PUT /api/v1/workflow-settings.",
        )

    def _render(self) -> Response:
        moved = tenant_settings_get(tenant=self.tenant, names=["soft_cap", "soft_cap_effective"])
        data = {"alert_thresholds": alert_thresholds_get(tenant_id=self.tenant.pk), **moved}
        return Response(self.OutputSerializer(data).data)

    @extend_schema(responses=OutputSerializer, summary="Low-balance alert thresholds")
    def get(self, request: Request) -> Response:
        return self._render()

    @extend_schema(
        request=InputSerializer,
        responses=OutputSerializer,
        summary="Change the low-balance alert thresholds (percent of topped_up_to)",
    )
    def put(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        with transaction.atomic():
            if "alert_thresholds" in values:
                alert_settings_update(tenant=self.tenant, thresholds=values["alert_thresholds"])
            if "soft_cap" in values:
                tenant_settings_set(tenant=self.tenant, changes={"soft_cap": values["soft_cap"]})
        return self._render()


@extend_schema_serializer(component_name="WebhookEndpoint")
class WebhookEndpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    event_types = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class WebhookEndpointsApi(TenantApiView):
    required_scope = ApiKey.Scope.BILLING

    @extend_schema_serializer(component_name="WebhookEndpointInput")
    class InputSerializer(serializers.Serializer):
        url = serializers.URLField(max_length=2000)
        # The service refuses an unknown type too; the choices put the list in the schema.
        event_types = serializers.ListField(
            child=serializers.ChoiceField(
                choices=WEBHOOK_EVENT_TYPES,
                error_messages={
                    "invalid_choice": "Unknown event type '{input}'; the types are: "
                    + ", ".join(WEBHOOK_EVENT_TYPES)
                    + "."
                },
            ),
            max_length=len(WEBHOOK_EVENT_TYPES),
            required=False,
        )

    @extend_schema_serializer(component_name="WebhookEndpointCreated")
    class CreatedSerializer(WebhookEndpointSerializer):
        secret = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={201: CreatedSerializer},
        summary="Add an endpoint; its signing secret is shown in this response only",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(
            tenant=self.tenant,
            url=data.validated_data["url"],
            event_types=data.validated_data.get("event_types"),
        )
        return Response(self.CreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=WebhookEndpointSerializer(many=True), summary="Webhook endpoints")
    def get(self, request: Request) -> Response:
        paginator = CreatedCursorPagination()
        endpoints = self.scoped(WebhookEndpoint).filter(deleted_at__isnull=True)
        page = paginator.paginate_queryset(endpoints, request, view=self)
        return paginator.get_paginated_response(WebhookEndpointSerializer(page, many=True).data)


class WebhookEndpointDetailApi(TenantApiView):
    required_scope = ApiKey.Scope.BILLING

    def _endpoint(self, endpoint_id: int) -> WebhookEndpoint:
        return self.get_scoped_or_404(WebhookEndpoint, pk=endpoint_id, deleted_at__isnull=True)

    @extend_schema(responses=WebhookEndpointSerializer, summary="A webhook endpoint")
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(WebhookEndpointSerializer(self._endpoint(endpoint_id)).data)

    @extend_schema(
        responses={204: None},
        summary="Delete an endpoint: nothing more is sent to it (404 once deleted)",
    )
    def delete(self, request: Request, endpoint_id: int) -> Response:
        webhook_endpoint_delete(endpoint=self._endpoint(endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EstimateCreateApi(TenantApiView):
    @extend_schema_serializer(component_name="EstimateInput")
    class InputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="EstimateInputAction")
        class ActionSerializer(serializers.Serializer):
            action = serializers.SlugField(max_length=100)
            monthly_count = credits(min_value=Decimal(0), max_value=MAX_MONTHLY_COUNT)
            model_mix = serializers.DictField(
                child=serializers.DecimalField(
                    max_digits=5, decimal_places=4, min_value=Decimal(0), max_value=Decimal(1)
                ),
                required=False,
            )

            def validate_model_mix(self, value: dict[str, Decimal]) -> dict[str, Decimal]:
                if len(value) > MAX_MODEL_MIX:
                    raise serializers.ValidationError(
                        f"A model mix names {MAX_MODEL_MIX} model classes at most."
                    )
                if any(not SLUG.fullmatch(name) for name in value):
                    raise serializers.ValidationError(
                        "A model mix is keyed by model class names (letters, digits, - and _)."
                    )
                if sum(value.values(), Decimal(0)) > 1:
                    raise serializers.ValidationError(
                        "The shares of a model mix add up to 1 at most."
                    )
                return value

        actions: serializers.ListSerializer[Any] = serializers.ListSerializer(
            child=ActionSerializer(), allow_empty=False, max_length=MAX_ROWS
        )

    @extend_schema_serializer(component_name="Estimate")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="EstimatePlan")
        class PlanSerializer(serializers.Serializer):
            """The plan at its price in the tenant's billing currency."""

            slug = serializers.CharField(source="plan.slug")
            name = serializers.CharField(source="plan.name")
            included_credits = credits(source="plan.included_credits")
            price_minor = serializers.IntegerField()
            currency = serializers.CharField()

        @extend_schema_serializer(component_name="EstimateLine")
        class LineSerializer(serializers.Serializer):
            action = serializers.CharField()
            model_class = serializers.CharField()
            monthly_count = credits()
            credits = credits()

        credits = credits()
        low = serializers.IntegerField()
        high = serializers.IntegerField()
        band_percent = serializers.IntegerField()
        plan = PlanSerializer(source="offer", allow_null=True)
        sentence = serializers.CharField()
        lines = LineSerializer(many=True)

    @extend_schema(
        request=InputSerializer,
        responses=OutputSerializer,
        summary="Monthly action counts → a credit range (±20%) and the cheapest plan that fits",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rows = [
            EstimateRow(
                action=row["action"],
                monthly_count=row["monthly_count"],
                model_mix=row.get("model_mix", {}),
            )
            for row in data.validated_data["actions"]
        ]
        result = estimate(tenant=self.tenant, rows=rows, at=timezone.now())
        return Response(self.OutputSerializer(result).data)


class StripeWebhookApi(APIView):
    """Stripe's deliveries: authenticated by the Stripe-Signature header, not an API key."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=None,
        responses={200: None},
        summary="Stripe webhook receiver",
        description="A signed body that is not a sound event is stored with its error and "
        "answered 200 as well (with `error`): a 4xx would only make Stripe retry it.",
    )
    def post(self, request: Request) -> Response:
        # The raw bytes: the signature covers them exactly, so the JSON is never re-encoded.
        event, created = stripe_event_receive(
            payload=request.body, signature_header=request.META.get("HTTP_STRIPE_SIGNATURE", "")
        )
        body = {"received": True, "event": event.event_id, "duplicate": not created}
        if event.error.startswith(MALFORMED):
            body["error"] = event.error
        return Response(body)
