"""Usage events are records of what happened and what it was charged: read-only in the admin
(a wrong charge is corrected by a ledger reversal, not by editing the event). A tenant's soft
cap is its own to set (PUT /api/v1/workflow-settings): shown, not edited."""

from django.contrib import admin

from ledger.admin import ReadOnlyAdmin
from metering.models import UsageEvent, WorkflowSettings


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
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


@admin.register(WorkflowSettings)
class WorkflowSettingsAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "soft_cap", "updated_at"]
    search_fields = ["tenant__slug"]
