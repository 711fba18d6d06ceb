from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from tenants.cache import config_stamp_bump
from tenants.models import ApiKey, Invitation, Membership, OutboxMessage, Tenant
from tenants.outbox import MAX_ATTEMPTS, outbox_relay_due
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


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations to tenants, for support: read-only (a tenant's owners and admins send and
    withdraw them on the portal's team page)."""

    list_display = [
        "email",
        "tenant",
        "role",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
        "closed_at",
        "closed_by",
    ]
    list_filter = ["status", "role"]
    list_select_related = ["tenant", "invited_by", "closed_by"]
    search_fields = ["email", "tenant__slug"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _OutboxState(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("waiting", "waiting to run"), ("given_up", "given up"), ("handled", "handled")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        waiting = queryset.filter(handled_at__isnull=True)
        if self.value() == "waiting":
            return waiting.filter(attempts__lt=MAX_ATTEMPTS)
        if self.value() == "given_up":
            return waiting.filter(attempts__gte=MAX_ATTEMPTS)
        if self.value() == "handled":
            return queryset.filter(handled_at__isnull=False)
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Side effects not run yet (tenants/outbox.py): a growing "waiting" list means the broker,
    the workers or the beat are down; "given up" ones failed every time. Read-only; "send now"
    sends the selected ones again at once (a given-up one gets its attempts back)."""

    list_display = [
        "id",
        "task",
        "created_at",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "handled_at",
    ]
    list_filter = [_OutboxState, "task"]
    readonly_fields = [
        "task",
        "kwargs",
        "once",
        "created_at",
        "next_attempt_at",
        "attempts",
        "sent_at",
        "handled_at",
    ]
    actions = ["send_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a waiting message is a side effect someone is owed

    @admin.action(description="Send what is waiting now")
    def send_now(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        now = timezone.now()
        queryset.filter(handled_at__isnull=True).update(next_attempt_at=now, attempts=0)
        sent = outbox_relay_due(now=now)
        self.message_user(request, f"Handed {sent} message(s) to the broker.", messages.SUCCESS)
