from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.api.base import TenantApiView


class TenantDetailApi(TenantApiView):
    class OutputSerializer(serializers.Serializer):
        slug = serializers.CharField()
        name = serializers.CharField()
        status = serializers.CharField()
        created_at = serializers.DateTimeField()
        api_key = serializers.SerializerMethodField()

        def get_api_key(self, obj: object) -> dict[str, object]:
            api_key = self.context["api_key"]
            return {"name": api_key.name, "prefix": api_key.prefix, "scopes": api_key.scopes}

    @extend_schema(responses=OutputSerializer, summary="The tenant the API key belongs to")
    def get(self, request: Request) -> Response:
        data = self.OutputSerializer(self.tenant, context={"api_key": self.api_key}).data
        return Response(data)
