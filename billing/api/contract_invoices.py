"""A tenant's contract invoices over the API: each commitment tranche and month of overdraft
the gateway invoiced, with the link where the customer opens (and pays) it."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.purchases import public_url
from billing.models import ContractInvoice
from billing.selectors import contract_invoice_list
from tenants.api.base import TenantApiView
from tenants.api.pagination import CreatedCursorPagination
from tenants.models import ApiKey

# What the customer is shown of an invoice's status (a request not issued yet is not listed).
LISTED_STATUSES = [s for s in ContractInvoice.Status.values if s != "requested"]


@extend_schema_serializer(component_name="ContractInvoice")
class ContractInvoiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    contract = serializers.IntegerField(source="contract_id")
    contract_name = serializers.CharField(source="contract.name")
    kind = serializers.ChoiceField(
        choices=ContractInvoice.Kind.choices,
        help_text="`commitment`: a tranche of the committed credits; `overage`: a month's "
        "overdraft, invoiced in arrears.",
    )
    period_index = serializers.IntegerField(
        help_text="The tranche, or the contract month (0 first)."
    )
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    number = serializers.CharField()
    description = serializers.CharField()
    credits = serializers.DecimalField(max_digits=18, decimal_places=4)
    amount_minor = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=LISTED_STATUSES)
    url = serializers.SerializerMethodField(help_text="The invoice's page, where it is paid.")
    created_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)

    def get_url(self, obj: ContractInvoice) -> str:
        # Stripe's hosted invoice page; the fake gateway's is the portal's own.
        return public_url(obj.hosted_url or f"/billing/contract-invoices/{obj.pk}/")


class ContractInvoicesApi(TenantApiView):
    required_scope = ApiKey.Scope.BILLING

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=LISTED_STATUSES, required=False)

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=LISTED_STATUSES)],
        responses=ContractInvoiceSerializer(many=True),
        summary="Contract invoices (commitment and overdraft), newest first, with their links",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        invoices = contract_invoice_list(tenant=self.tenant, **filters.validated_data)
        paginator = CreatedCursorPagination()
        page = paginator.paginate_queryset(invoices, request, view=self)
        return paginator.get_paginated_response(ContractInvoiceSerializer(page, many=True).data)
