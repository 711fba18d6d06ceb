"""`/api/v1/subscription`: the tenant's subscription (read, subscribe, change plan or seats,
cancel at the period end). Thin: parse, call billing.services.subscriptions, render."""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import Plan, Subscription, SubscriptionInvoice
from billing.selectors import subscription_current_get
from billing.services.subscriptions import (
    subscription_cancel,
    subscription_change,
    subscription_create,
)
from tenants.api.base import TenantApiView
from tenants.models import ApiKey

GATEWAY_ERROR = (
    "The payment gateway could not be reached; nothing changed (`payment_gateway_error`)."
)


class PlanSlugField(serializers.SlugField):
    """An active plan's slug, read as the plan (422 naming the field when there is none)."""

    def to_internal_value(self, data: Any) -> Plan:  # type: ignore[override]
        slug = super().to_internal_value(data)
        plan = Plan.objects.filter(slug=slug, active=True).first()
        if plan is None:
            raise serializers.ValidationError("No active plan has that slug.")
        return plan


@extend_schema_serializer(component_name="SubscriptionInvoice")
class InvoiceSerializer(serializers.ModelSerializer):
    plan = serializers.CharField(source="plan.slug")

    class Meta:
        model = SubscriptionInvoice
        fields = [
            "kind",
            "status",
            "period_index",
            "plan",
            "seats",
            "credits",
            "amount_minor",
            "currency",
            "hosted_url",
            "created_at",
            "paid_at",
        ]


@extend_schema_serializer(component_name="Subscription")
class SubscriptionSerializer(serializers.ModelSerializer):
    plan = serializers.CharField(source="plan.slug")
    next_plan = serializers.CharField(source="next_plan.slug", allow_null=True, default=None)
    included_credits = serializers.DecimalField(
        source="allowance", max_digits=18, decimal_places=4, read_only=True
    )
    runs_refused_from = serializers.DateTimeField(
        source="tenant.runs_refused_from", allow_null=True
    )
    invoices = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = [
            "plan",
            "seats",
            "currency",
            "status",
            "included_credits",
            "current_period_start",
            "current_period_end",
            "next_plan",
            "next_seats",
            "cancel_at_period_end",
            "past_due_since",
            "runs_refused_from",
            "invoices",
        ]

    def get_invoices(self, obj: Subscription) -> list[dict[str, Any]]:
        recent = (
            SubscriptionInvoice.objects.filter(tenant_id=obj.tenant_id, subscription=obj)
            .exclude(status=SubscriptionInvoice.Status.REQUESTED)
            .select_related("plan")
            .order_by("-created_at", "-pk")[:12]
        )
        return list(InvoiceSerializer(recent, many=True).data)


class SubscriptionApi(TenantApiView):
    required_scope = ApiKey.Scope.BILLING
    error_statuses = {
        "GET": {404: "The tenant has no subscription (`subscription_not_found`)."},
        "POST": {
            409: "The tenant already has a subscription (`subscription_exists`).",
            502: GATEWAY_ERROR,
        },
        "PATCH": {
            409: "The subscription is not active, linked, or it ends at the period end "
            "(`subscription_not_active`).",
            502: GATEWAY_ERROR,
        },
        "DELETE": {502: GATEWAY_ERROR},
    }

    @extend_schema_serializer(component_name="SubscriptionCreateInput")
    class CreateSerializer(serializers.Serializer):
        plan = PlanSlugField()
        seats = serializers.IntegerField(min_value=1, max_value=100_000, default=1)
        currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False)

    @extend_schema_serializer(component_name="SubscriptionChangeInput")
    class ChangeSerializer(serializers.Serializer):
        plan = PlanSlugField(required=False)
        seats = serializers.IntegerField(min_value=1, max_value=100_000, required=False)

    def _render(self, sub: Subscription, code: int = status.HTTP_200_OK) -> Response:
        sub = Subscription.objects.select_related("plan", "next_plan", "tenant").get(pk=sub.pk)
        return Response(SubscriptionSerializer(sub).data, status=code)

    @extend_schema(responses=SubscriptionSerializer, summary="The tenant's subscription")
    def get(self, request: Request) -> Response:
        return self._render(subscription_current_get(tenant=self.tenant))

    @extend_schema(
        request=CreateSerializer,
        responses={201: SubscriptionSerializer},
        summary="Subscribe: the first period is invoiced now; its credits come when it is paid",
    )
    def post(self, request: Request) -> Response:
        data = self.CreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        sub = subscription_create(
            tenant=self.tenant,
            plan=values["plan"],
            seats=values["seats"],
            currency=values.get("currency"),
        )
        return self._render(sub, status.HTTP_201_CREATED)

    @extend_schema(
        request=ChangeSerializer,
        responses=SubscriptionSerializer,
        summary="Change plan or seats: a rise now (invoiced, prorated), a fall at the period end",
    )
    def patch(self, request: Request) -> Response:
        data = self.ChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        current = subscription_current_get(tenant=self.tenant)
        values = data.validated_data
        sub = subscription_change(
            tenant=self.tenant,
            plan=values.get("plan", current.plan),
            seats=values.get("seats", current.seats),
        )
        return self._render(sub)

    @extend_schema(
        request=None,
        responses={200: SubscriptionSerializer},
        summary="Cancel at the period end (its credits run to then)",
    )
    def delete(self, request: Request) -> Response:
        return self._render(subscription_cancel(tenant=self.tenant))
