"""Overview: what the tenant has to spend now, how fast it goes and when it runs out at that
pace, its plan and seats, what needs attention (a past-due plan, low-balance alerts, auto
top-up stopped, workflow runs waiting for credits)."""

from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from billing.display import credit_display_get
from billing.models import AlertState, AutoTopUpPolicy, Subscription
from billing.selectors import auto_topup_policy_get, subscription_get_active
from ledger.rollup_selectors import burn_rate_get, debit_days_as_of
from ledger.selectors import balance_get
from metering.models import WorkflowRun
from metering.workflow_selectors import workflow_list
from portal.base import PortalView

WAITING_SHOWN = 5


@dataclass(frozen=True)
class Attention:
    """One thing the customer should know, in a sentence (and where to act on it)."""

    text: str
    url_name: str = ""
    action: str = ""


def _attention(
    subscription: Subscription | None, alerts: list[AlertState], policy: AutoTopUpPolicy | None
) -> list[Attention]:
    found = []
    for alert in alerts:
        level = "is used up" if alert.threshold == 0 else f"fell under {alert.threshold}%"
        since = f"{alert.fired_at:%Y-%m-%d %H:%M} UTC" if alert.fired_at else "a while"
        found.append(
            Attention(
                f"Low balance: your balance {level} of what you last topped up to (since {since}).",
                "portal:buy",
                "Buy credits",
            )
        )
    if policy is not None and policy.enabled and policy.state != AutoTopUpPolicy.State.ACTIVE:
        found.append(
            Attention(
                f"Auto top-up: {policy.get_state_display().lower()}. "
                f"{policy.disabled_reason or policy.last_refusal}".strip(),
                "portal:auto-top-up",
                "Auto top-up",
            )
        )
    if subscription is not None and subscription.status == Subscription.Status.INCOMPLETE:
        found.append(
            Attention(
                "Your plan's first invoice is unpaid: its credits come when it is paid.",
                "portal:plan",
                "Plan",
            )
        )
    return found


class OverviewPage(PortalView):
    template_name = "portal/overview.html"
    section = "overview"

    def get(self, request: HttpRequest) -> HttpResponse:
        now = timezone.now()
        balance = balance_get(tenant=self.tenant, at=now)
        subscription = subscription_get_active(tenant=self.tenant)
        alerts = list(
            AlertState.objects.filter(tenant=self.tenant, state=AlertState.State.FIRED).order_by(
                "threshold"
            )
        )
        suspended = workflow_list(tenant=self.tenant, state=WorkflowRun.State.SUSPENDED)
        waiting = list(suspended.order_by("last_activity_at", "pk")[:WAITING_SHOWN])
        needed = sum((run.suspended_step_credits or Decimal(0) for run in waiting), Decimal(0))
        return self.page(
            {
                "balance": balance,
                "burn": burn_rate_get(tenant=self.tenant, available=balance.available, at=now),
                "burn_as_of": debit_days_as_of(),
                "subscription": subscription,
                "attention": _attention(
                    subscription, alerts, auto_topup_policy_get(tenant=self.tenant)
                ),
                "waiting": waiting,
                "waiting_count": len(waiting)
                if len(waiting) < WAITING_SHOWN
                else suspended.count(),
                "waiting_needs": max(needed - balance.available, Decimal(0)),
                "credit_display": credit_display_get(tenant_id=self.tenant.pk),
            }
        )
