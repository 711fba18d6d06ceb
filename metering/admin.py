"""Usage events are records of what happened and what it was charged: read-only in the admin
(a wrong charge is corrected by a ledger reversal, not by editing the event)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from metering.models import UsageEvent


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = [
        "idempotency_key",
        "tenant",
        "action",
        "model_class",
        "quantity",
        "outcome",
        "credits",
        "cogs_minor",
        "revenue_minor",
        "occurred_at",
    ]
    list_filter = ["action", "outcome", "model_class"]
    search_fields = ["idempotency_key", "tenant__slug"]
    date_hierarchy = "occurred_at"
    list_select_related = ["tenant"]
    raw_id_fields = ["tenant", "workflow_run", "rate_card_version", "ledger_transaction"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
