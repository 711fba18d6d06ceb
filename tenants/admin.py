from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants.cache import config_stamp_bump
from tenants.models import ApiKey, Membership, Tenant
from tenants.services import api_key_create, api_key_revoke, tenant_reactivate, tenant_suspend


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]
    actions = ["issue_api_key", "suspend", "reactivate"]

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        # Processes cache tenants with their keys: an edited status or slug must reach them.
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if change:
                config_stamp_bump()

    @admin.action(description="Suspend (their API keys are refused)")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            tenant_suspend(tenant=tenant)
        self.message_user(request, f"Suspended {queryset.count()} tenant(s).", messages.SUCCESS)

    @admin.action(description="Reactivate")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            tenant_reactivate(tenant=tenant)
        self.message_user(request, f"Reactivated {queryset.count()} tenant(s).", messages.SUCCESS)

    @admin.action(description="Issue a new API key (shown once)")
    def issue_api_key(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            issued = api_key_create(tenant=tenant, name=f"admin-issued by {request.user}")
            self.message_user(
                request,
                f"New API key for {tenant.slug} (copy it now, it is not shown again): "
                f"{issued.plaintext}",
                messages.WARNING,
            )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "tenant",
        "prefix",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "tenant__slug"]
    exclude = ["key_hash"]
    readonly_fields = ["tenant", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        with transaction.atomic():  # a renamed key: cached keys carry their name
            super().save_model(request, obj, form, change)
            config_stamp_bump()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # Keys are issued from the tenant's page, where the plaintext is shown once.

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset:
            api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)
