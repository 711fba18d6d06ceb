from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.api.base import TenantApiView


class TenantDetailApi(TenantApiView):
    @extend_schema_serializer(component_name="Tenant")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="TenantApiKey")
        class ApiKeySerializer(serializers.Serializer):
            name = serializers.CharField()
            prefix = serializers.CharField()
            scopes = serializers.ListField(child=serializers.CharField())

        slug = serializers.CharField()
        name = serializers.CharField()
        status = serializers.CharField()
        created_at = serializers.DateTimeField()
        api_key = ApiKeySerializer(help_text="The key that made this request.")

    @extend_schema(responses=OutputSerializer, summary="The tenant the API key belongs to")
    def get(self, request: Request) -> Response:
        tenant = self.tenant
        fields = {"slug": tenant.slug, "name": tenant.name, "status": tenant.status}
        data = self.OutputSerializer(
            {**fields, "created_at": tenant.created_at, "api_key": self.api_key}
        ).data
        return Response(data)
