from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from ratecards.selectors import (
    RateCardOverview,
    ScheduledVersion,
    rate_card_overview,
    version_rates,
)
from tenants.api.base import TenantApiView


@extend_schema_serializer(component_name="RateCardRate")
class _RateSerializer(serializers.Serializer):
    action = serializers.CharField()
    model_class = serializers.CharField()
    credits_per_unit = serializers.DecimalField(max_digits=18, decimal_places=4)
    charge_on = serializers.CharField()


@extend_schema_serializer(component_name="RateCardMultiplier")
class _MultiplierSerializer(serializers.Serializer):
    model_class = serializers.CharField()
    multiplier = serializers.DecimalField(max_digits=10, decimal_places=4)


def _multipliers(multipliers: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"model_class": k, "multiplier": v} for k, v in multipliers.items()]


class RateCardDetailApi(TenantApiView):
    @extend_schema_serializer(component_name="RateCardDetail")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="RateCardCard")
        class CardSerializer(serializers.Serializer):
            name = serializers.CharField()
            slug = serializers.CharField()

        @extend_schema_serializer(component_name="RateCardVersion")
        class VersionSerializer(serializers.Serializer):
            number = serializers.IntegerField()
            effective_from = serializers.DateTimeField()

        @extend_schema_serializer(component_name="RateCardAssignment")
        class AssignmentSerializer(serializers.Serializer):
            mode = serializers.CharField()
            notice_days = serializers.IntegerField()
            pinned_version = serializers.IntegerField(
                source="pinned_version.number", allow_null=True
            )
            pinned_until = serializers.DateTimeField(allow_null=True)

        @extend_schema_serializer(component_name="RateCardScheduledVersion")
        class ScheduledSerializer(serializers.Serializer):
            number = serializers.IntegerField(source="version.number")
            effective_from = serializers.DateTimeField(source="version.effective_from")
            applies_from = serializers.DateTimeField(
                help_text="When this version starts to price this tenant's usage (notice included)."
            )
            rates = serializers.SerializerMethodField()
            multipliers = serializers.SerializerMethodField()

            @extend_schema_field(_RateSerializer(many=True))
            def get_rates(self, obj: ScheduledVersion) -> list[dict[str, Any]]:
                rates, _ = version_rates(version=obj.version)
                return _RateSerializer(rates, many=True).data  # type: ignore[return-value]

            @extend_schema_field(_MultiplierSerializer(many=True))
            def get_multipliers(self, obj: ScheduledVersion) -> list[dict[str, Any]]:
                _, multipliers = version_rates(version=obj.version)
                return _MultiplierSerializer(_multipliers(multipliers), many=True).data  # type: ignore[return-value]

        rate_card = CardSerializer()
        version = VersionSerializer()
        rates = _RateSerializer(many=True)
        multipliers = serializers.SerializerMethodField()
        assignment = AssignmentSerializer()
        scheduled = ScheduledSerializer(many=True)

        @extend_schema_field(_MultiplierSerializer(many=True))
        def get_multipliers(self, obj: RateCardOverview) -> list[dict[str, Any]]:
            return _MultiplierSerializer(_multipliers(obj.multipliers), many=True).data  # type: ignore[return-value]

    @extend_schema(
        responses=OutputSerializer,
        summary="The rate card in force for this tenant, and the versions scheduled to follow",
        description=(
            "Rates are credits per unit of an action. A model class without its own rate costs "
            "the action's default rate times the model class multiplier. `charge_on: success` "
            "actions are charged only when the outcome is reported successful. `scheduled` lists "
            "published versions that will apply to this tenant later, with `applies_from`: the "
            "version's effective date, or later when the tenant's contract grants a notice "
            "period or pins a version until a date. 422 `no_rate_card` when no version is in "
            "force."
        ),
    )
    def get(self, request: Request) -> Response:
        overview = rate_card_overview(tenant=self.tenant, now=timezone.now())
        return Response(self.OutputSerializer(overview).data)
