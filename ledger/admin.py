"""The ledger in the admin: every ledger model is read-only (the services are its only
writer); the credit account page carries "grant credits" and "adjust" actions that call them."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from ledger.models import CreditAccount, CreditBucket, CreditHold, LedgerEntry, LedgerTransaction
from ledger.services import ledger_adjust, ledger_grant
from tenants.exceptions import CreditlineError


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(CreditBucket)
class CreditBucketAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "tenant",
        "source",
        "policy",
        "granted",
        "remaining",
        "granted_at",
        "expires_at",
        "cost_basis_minor",
        "currency",
        "external_reference",
    ]
    list_filter = ["policy", "source", "is_overdraft"]
    search_fields = ["tenant__slug", "external_reference"]


@admin.register(CreditHold)
class CreditHoldAdmin(ReadOnlyAdmin):
    list_display = ["id", "tenant", "reference", "amount", "remaining", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["tenant__slug", "reference"]


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "tenant",
        "kind",
        "amount",
        "idempotency_key",
        "source_type",
        "source_id",
        "actor",
        "created_at",
    ]
    list_filter = ["kind"]
    search_fields = ["tenant__slug", "idempotency_key", "source_id"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "tenant",
        "kind",
        "amount",
        "bucket",
        "hold",
        "balance_after",
        "transaction",
        "created_at",
    ]
    list_filter = ["kind"]
    search_fields = ["tenant__slug", "transaction__idempotency_key"]


class GrantForm(forms.Form):
    credits = forms.DecimalField(min_value=Decimal("0.0001"), max_digits=18, decimal_places=4)
    policy = forms.ChoiceField(choices=CreditBucket.Policy.choices)
    expires_at = forms.DateTimeField(
        required=False, help_text="Needed for monthly_reset: the end of the billing period."
    )
    reason = forms.CharField(max_length=500)
    # Rendered once with the form, so a double-submitted form grants once.
    token = forms.CharField(widget=forms.HiddenInput)


class AdjustForm(forms.Form):
    credits = forms.DecimalField(
        max_digits=18, decimal_places=4, help_text="Signed: negative takes credits away."
    )
    reason = forms.CharField(max_length=500)
    token = forms.CharField(widget=forms.HiddenInput)


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "available", "reserved", "topped_up_to", "overdraft_limit"]
    search_fields = ["tenant__slug"]
    actions = ["grant_credits", "adjust_credits"]

    # Moving a customer's credits needs its own permission (ledger.grant_credits,
    # ledger.adjust_credits), as in the vendor console (insights/staff_actions.py).
    def has_grant_credits_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ledger.grant_credits")

    def has_adjust_credits_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ledger.adjust_credits")

    @admin.action(description="Grant credits", permissions=["grant_credits"])
    def grant_credits(
        self, request: HttpRequest, queryset: QuerySet[CreditAccount]
    ) -> TemplateResponse | None:
        form = self._form(GrantForm, request)
        if not form.is_bound or not form.is_valid():
            return self._render(request, queryset, form, "grant_credits", "Grant credits")
        data = form.cleaned_data
        for account in queryset.select_related("tenant"):
            try:
                result = ledger_grant(
                    tenant=account.tenant,
                    credits=data["credits"],
                    policy=data["policy"],
                    source=CreditBucket.Source.PROMOTION,
                    external_reference=f"admin:{data['token']}",
                    expires_at=_expiry(data["expires_at"], data["policy"]),
                    actor=_user(request),
                    memo=data["reason"],
                    source_type="admin",
                )
            except CreditlineError as error:
                self.message_user(request, f"{account.tenant}: {error.message}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{account.tenant}: granted {result.bucket.granted} credits "
                f"(available {result.available_after}).",
                messages.SUCCESS,
            )
        return None

    @admin.action(description="Adjust credits (signed correction)", permissions=["adjust_credits"])
    def adjust_credits(
        self, request: HttpRequest, queryset: QuerySet[CreditAccount]
    ) -> TemplateResponse | None:
        form = self._form(AdjustForm, request)
        if not form.is_bound or not form.is_valid():
            return self._render(request, queryset, form, "adjust_credits", "Adjust credits")
        data = form.cleaned_data
        for account in queryset.select_related("tenant"):
            try:
                ledger_adjust(
                    tenant=account.tenant,
                    credits=data["credits"],
                    reason=data["reason"],
                    actor=_user(request),
                    idempotency_key=f"admin-adjust:{data['token']}",
                )
            except CreditlineError as error:
                self.message_user(request, f"{account.tenant}: {error.message}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{account.tenant}: adjusted by {data['credits']} credits.",
                messages.SUCCESS,
            )
        return None

    def _form(self, form_class: type[forms.Form], request: HttpRequest) -> forms.Form:
        if "apply" in request.POST:
            return form_class(request.POST)
        return form_class(initial={"token": uuid.uuid4().hex})

    def _render(
        self,
        request: HttpRequest,
        queryset: QuerySet[CreditAccount],
        form: forms.Form,
        action: str,
        title: str,
    ) -> TemplateResponse:
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "action": action,
            "accounts": queryset.select_related("tenant"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/ledger/credit_action.html", context)


def _expiry(expires_at: datetime | None, policy: str) -> datetime | None:
    return expires_at if policy == CreditBucket.Policy.MONTHLY_RESET else None


def _user(request: HttpRequest) -> User:
    """The acting admin, recorded on every grant and adjustment they make."""
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user
