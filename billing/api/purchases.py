"""Buying credits over the API: the packs for sale, top-ups (with receipts), the saved card.

Every route here spends or exposes the tenant's money: the key needs the `billing` scope.
"""

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import links
from billing.models import BillingCustomer, TopUp
from billing.money import currency_exponent, money_from_minor, price_per_1000_minor
from billing.pack_selectors import PackOffer, pack_offer_list
from billing.selectors import billing_currency_get, billing_customer_get, topup_list
from billing.services import (
    payment_method_remove,
    payment_method_setup_start,
    topup_cancel,
    topup_purchase,
)
from tenants.api.base import TenantApiView
from tenants.api.pagination import CreatedCursorPagination
from tenants.models import ApiKey

# The column that keeps it (TopUp.request_key).
MAX_REQUEST_KEY = 255
# What a route that calls the payment gateway adds to the errors it can answer.
GATEWAY_FAILED = "The payment gateway failed (`payment_gateway_error`); nothing was charged."


def public_url(path_or_url: str) -> str:
    """A portal path as the customer's browser reaches it; a gateway's URL as it is."""
    if path_or_url.startswith("/"):
        return settings.CREDITLINE_PUBLIC_URL.rstrip("/") + path_or_url
    return path_or_url


def price_text(minor: int, currency: str) -> str:
    exponent = currency_exponent(currency)
    return f"{money_from_minor(minor, currency):.{exponent}f}"


@extend_schema_serializer(component_name="TopUp")
class TopUpSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pack = serializers.CharField(source="pack.slug")
    credits = serializers.DecimalField(max_digits=18, decimal_places=4)
    amount_minor = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=TopUp.Status.choices)
    gateway = serializers.CharField()
    auto = serializers.BooleanField()
    checkout_url = serializers.SerializerMethodField(
        help_text="Where to pay, while the top-up is pending and its checkout open."
    )
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="When the checkout stops taking payment."
    )
    receipt_url = serializers.SerializerMethodField(help_text="The receipt, once paid.")
    receipt_number = serializers.SerializerMethodField()
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)

    def get_checkout_url(self, obj: TopUp) -> str | None:
        if obj.status != TopUp.Status.PENDING or not obj.checkout_url:
            return None
        return public_url(obj.checkout_url)

    def get_receipt_url(self, obj: TopUp) -> str | None:
        if obj.status != TopUp.Status.SUCCEEDED:
            return None
        if obj.receipt_url and not obj.receipt_url.startswith("/"):
            return obj.receipt_url
        # The portal's receipt link: it asks the gateway for its receipt and goes there (the
        # fake gateway's is its own page).
        return public_url(links.receipt(obj.pk))

    def get_receipt_number(self, obj: TopUp) -> str | None:
        return obj.receipt_number if obj.status == TopUp.Status.SUCCEEDED else None


class CreditPacksApi(TenantApiView):
    required_scope = ApiKey.Scope.BILLING

    @extend_schema_serializer(component_name="CreditPack")
    class OutputSerializer(serializers.Serializer):
        slug = serializers.CharField()
        name = serializers.CharField()
        credits = serializers.DecimalField(max_digits=18, decimal_places=4)
        price_minor = serializers.IntegerField()
        currency = serializers.CharField()
        price = serializers.SerializerMethodField(help_text="In the currency's major unit.")
        price_per_1000_credits = serializers.SerializerMethodField(
            help_text="What 1,000 credits cost in this pack, in the currency's major unit."
        )

        def get_price(self, obj: PackOffer) -> str:
            return price_text(obj.price_minor, obj.currency)

        def get_price_per_1000_credits(self, obj: PackOffer) -> str:
            return price_text(price_per_1000_minor(obj.price_minor, obj.credits), obj.currency)

    @extend_schema(
        responses=OutputSerializer(many=True),
        summary="The credit packs for sale, priced in the tenant's billing currency",
    )
    def get(self, request: Request) -> Response:
        packs = pack_offer_list(currency=billing_currency_get(tenant=self.tenant))
        return Response({"results": self.OutputSerializer(packs, many=True).data})


class TopUpsApi(TenantApiView):
    # Beyond the errors every operation lists (tenants/api/schema.py).
    error_statuses = {
        "POST": {
            409: "The Idempotency-Key was used with another body (`idempotency_conflict`).",
            502: GATEWAY_FAILED,
        }
    }

    required_scope = ApiKey.Scope.BILLING

    @extend_schema_serializer(component_name="TopUpCreateInput")
    class InputSerializer(serializers.Serializer):
        pack = serializers.SlugField(max_length=63)
        currency = serializers.CharField(
            min_length=3, max_length=3, required=False, help_text="Must be the tenant's."
        )

    @extend_schema(
        request=InputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The same key returns the same top-up (200); another body, 409.",
            )
        ],
        responses={201: TopUpSerializer, 200: TopUpSerializer},
        summary="Buy a credit pack: a pending top-up and the page that takes the payment",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        request_key = request.headers.get("Idempotency-Key", "")
        if len(request_key) > MAX_REQUEST_KEY:
            raise serializers.ValidationError(
                {
                    "Idempotency-Key": [
                        f"Ensure this header has at most {MAX_REQUEST_KEY} characters."
                    ]
                }
            )
        base = settings.CREDITLINE_PUBLIC_URL.rstrip("/")
        purchase = topup_purchase(
            tenant=self.tenant,
            pack_slug=data.validated_data["pack"],
            currency=data.validated_data.get("currency"),
            request_key=request_key,
            return_url=f"{base}{links.BUY}",
        )
        code = status.HTTP_201_CREATED if purchase.created else status.HTTP_200_OK
        return Response(TopUpSerializer(purchase.top_up).data, status=code)

    @extend_schema(responses=TopUpSerializer(many=True), summary="Purchases, newest first")
    def get(self, request: Request) -> Response:
        paginator = CreatedCursorPagination()
        page = paginator.paginate_queryset(topup_list(tenant=self.tenant), request, view=self)
        return paginator.get_paginated_response(TopUpSerializer(page, many=True).data)


class TopUpDetailApi(TenantApiView):
    required_scope = ApiKey.Scope.BILLING

    @extend_schema(responses=TopUpSerializer, summary="A top-up, with its receipt once paid")
    def get(self, request: Request, top_up_id: int) -> Response:
        top_up = self.get_scoped_or_404(TopUp, pk=top_up_id)
        return Response(TopUpSerializer(top_up).data)


class TopUpCancelApi(TenantApiView):
    error_statuses = {
        "POST": {
            409: "The top-up is no longer pending (`topup_not_pending`).",
            502: GATEWAY_FAILED,
        }
    }

    required_scope = ApiKey.Scope.BILLING

    @extend_schema(
        request=None,
        responses=TopUpSerializer,
        summary="Cancel a pending top-up: its checkout can no longer be paid",
    )
    def post(self, request: Request, top_up_id: int) -> Response:
        top_up = self.get_scoped_or_404(TopUp, pk=top_up_id)
        return Response(TopUpSerializer(topup_cancel(top_up=top_up)).data)


@extend_schema_serializer(component_name="PaymentMethod")
class PaymentMethodSerializer(serializers.Serializer):
    brand = serializers.CharField(source="card_brand")
    last4 = serializers.CharField(source="card_last4")
    exp_month = serializers.IntegerField(source="card_exp_month", allow_null=True)
    exp_year = serializers.IntegerField(source="card_exp_year", allow_null=True)


class PaymentMethodApi(TenantApiView):
    error_statuses = {
        "POST": {502: GATEWAY_FAILED},
        "DELETE": {
            409: "Auto top-up is on and charges this card (`payment_method_in_use`).",
            502: GATEWAY_FAILED,
        },
    }

    required_scope = ApiKey.Scope.BILLING

    @extend_schema_serializer(component_name="PaymentMethodState")
    class OutputSerializer(serializers.Serializer):
        card = PaymentMethodSerializer(allow_null=True)

    @extend_schema_serializer(component_name="PaymentMethodSetup")
    class SetupSerializer(serializers.Serializer):
        setup_url = serializers.CharField(
            help_text="Send the customer here to enter a card; it becomes the saved one."
        )

    @staticmethod
    def _card(customer: BillingCustomer | None) -> dict[str, Any] | None:
        if customer is None or not customer.payment_method_id:
            return None
        return dict(PaymentMethodSerializer(customer).data)

    @extend_schema(responses=OutputSerializer, summary="The saved card (brand, last 4, expiry)")
    def get(self, request: Request) -> Response:
        customer = billing_customer_get(tenant_id=self.tenant.pk)
        return Response({"card": self._card(customer)})

    @extend_schema_serializer(component_name="PaymentMethodSetupInput")
    class InputSerializer(serializers.Serializer):
        return_url = serializers.URLField(
            max_length=2000,
            help_text="Where the gateway's page sends the customer back, saved or not.",
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: SetupSerializer},
        summary="Add or replace the card: a page at the gateway where the customer enters it",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return_url = data.validated_data["return_url"]
        session = payment_method_setup_start(
            tenant=self.tenant, success_url=return_url, cancel_url=return_url
        )
        return Response({"setup_url": public_url(session.url)}, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None}, summary="Remove the saved card")
    def delete(self, request: Request) -> Response:
        payment_method_remove(tenant=self.tenant)
        return Response(status=status.HTTP_204_NO_CONTENT)
