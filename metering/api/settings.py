"""The tenant's workflow settings over REST: its soft cap (metering/soft_cap.py)."""

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from metering.soft_cap import soft_cap_get, workflow_settings_get, workflow_settings_update
from tenants.api.base import TenantApiView


def _credits(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=18, decimal_places=4, **kwargs)


class WorkflowSettingsApi(TenantApiView):
    @extend_schema_serializer(component_name="WorkflowSettings")
    class OutputSerializer(serializers.Serializer):
        soft_cap = _credits(
            allow_null=True,
            help_text="The tenant's own soft cap in credits; null: the default, the lowest "
            "alert threshold's share of the balance's topped_up_to.",
        )
        soft_cap_effective = _credits(
            help_text="The soft cap in force now: new runs are refused while the available "
            "balance is under it."
        )

    @extend_schema_serializer(component_name="WorkflowSettingsInput")
    class InputSerializer(serializers.Serializer):
        soft_cap = _credits(
            min_value=Decimal(0),
            allow_null=True,
            help_text="Credits (0: only an empty balance refuses a run); null: the default.",
        )

    def _render(self) -> Response:
        settings = workflow_settings_get(tenant=self.tenant)
        data = {
            "soft_cap": settings.soft_cap,
            "soft_cap_effective": soft_cap_get(tenant=self.tenant, settings=settings),
        }
        return Response(self.OutputSerializer(data).data)

    @extend_schema(responses=OutputSerializer, summary="The soft cap on new workflow runs")
    def get(self, request: Request) -> Response:
        return self._render()

    @extend_schema(
        request=InputSerializer,
        responses=OutputSerializer,
        summary="Set the soft cap (credits), or null for the default",
    )
    def put(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workflow_settings_update(tenant=self.tenant, soft_cap=data.validated_data["soft_cap"])
        return self._render()
