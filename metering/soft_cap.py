"""The soft cap: the available balance under which no new workflow run starts (DESIGN.md,
"Running out: durable workflows").

The tenant's own setting in credits (WorkflowSettings.soft_cap), or by default the lowest of
its low-balance alert thresholds (billing's, asked through tenants.events.tenant_settings) as a
share of what it was last topped up to (the ledger account's `topped_up_to`): a tenant warned
at 20% and 10% of the 100 credits it last bought can start runs down to 10 credits.
"""

from decimal import Decimal

from django.db import transaction

from ledger.selectors import credit_account_get
from ledger.services import quantize_credits
from metering.exceptions import InvalidUsage
from metering.models import WorkflowSettings
from tenants.events import tenant_settings_get
from tenants.models import Tenant

# The default share, in percent, for a tenant that has no alert thresholds at all.
DEFAULT_SOFT_CAP_PERCENT = 10


def workflow_settings_get(*, tenant: Tenant) -> WorkflowSettings:
    """The tenant's workflow settings; an unsaved default (no soft cap of its own) if none."""
    return WorkflowSettings.objects.filter(tenant=tenant).first() or WorkflowSettings(tenant=tenant)


def soft_cap_get(
    *,
    tenant: Tenant,
    settings: WorkflowSettings | None = None,
    topped_up_to: Decimal | None = None,
) -> Decimal:
    """The soft cap in credits now. `settings` and `topped_up_to` when the caller has them
    (starting a run holds the account's lock: its row is at hand)."""
    own = (settings or workflow_settings_get(tenant=tenant)).soft_cap
    if own is not None:
        return own
    if topped_up_to is None:
        topped_up_to = credit_account_get(tenant=tenant).topped_up_to
    asked = tenant_settings_get(tenant=tenant, names=["alert_thresholds"])
    percent = min(asked.get("alert_thresholds") or [DEFAULT_SOFT_CAP_PERCENT])
    return quantize_credits(topped_up_to * percent / 100)


def workflow_settings_update(*, tenant: Tenant, soft_cap: Decimal | None) -> WorkflowSettings:
    """Set the tenant's own soft cap in credits (0: only an empty balance refuses a run), or
    None to go back to the default."""
    if soft_cap is not None and (not soft_cap.is_finite() or soft_cap < 0):
        raise InvalidUsage("soft_cap", "A soft cap is a number of credits, 0 or more.")
    value = None if soft_cap is None else quantize_credits(soft_cap)
    with transaction.atomic():
        settings, _ = WorkflowSettings.objects.update_or_create(
            tenant=tenant, defaults={"soft_cap": value}
        )
    return settings
