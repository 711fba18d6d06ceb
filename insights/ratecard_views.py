"""The console's rate-card pages (staff only, insights/base.py): the cards and their versions,
a version against another (a diff of rates) with publish and simulate, a simulation's figures
(polled by htmx while it runs), and the suggested weights made a draft. Thin: each calls a
selector, a service or a staff action (insights/ratecard_actions.py)."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone

from insights.base import StaffPage
from insights.models import Simulation
from insights.ratecard_actions import (
    DRAFT_PERMISSION,
    PUBLISH_PERMISSION,
    ReasonRequired,
    staff_version_publish,
    staff_weights_draft,
)
from insights.simulator import (
    DEFAULT_DAYS,
    SimulationInputError,
    simulation_is_stale,
    simulation_request,
)
from insights.views import WeightsPage
from ratecards.models import CostCatalogVersion, PublishStatus, RateCard, RateCardVersion
from ratecards.selectors import card_assignments_in_force, version_diff
from tenants.exceptions import CreditlineError

NAV_NAME = "insights:ratecards"


class RateCardsPage(StaffPage):
    template_name = "insights/ratecards.html"
    nav_name = NAV_NAME

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        cards = list(RateCard.objects.prefetch_related("versions").order_by("slug"))
        return super().get_context_data(cards=cards, **kwargs)


def _int(value: str | None, default: int) -> int:
    # ASCII digits only: str.isdigit() is true of '²', which int() refuses.
    if value and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return default


def _days(value: str) -> int:
    """The simulation's window: the default when left empty; anything but a whole number is
    -1, which the simulator refuses with its message (never silently the default)."""
    return DEFAULT_DAYS if not value.strip() else _int(value.strip(), -1)


class RateCardVersionPage(StaffPage):
    """A version against another of its card (?against=<id>; by default the newest published
    one before it): rates added, removed and changed; a draft can be simulated and published."""

    template_name = "insights/ratecard_version.html"
    nav_name = NAV_NAME

    def version(self) -> RateCardVersion:
        return get_object_or_404(
            RateCardVersion.objects.select_related("rate_card"), pk=self.kwargs["version_id"]
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        version = self.version()
        others = list(version.rate_card.versions.exclude(pk=version.pk).order_by("-number"))
        against_id = _int(self.request.GET.get("against"), 0)
        against = next((v for v in others if v.pk == against_id), None) or next(
            (v for v in others if v.is_published and v.number < version.number), None
        )
        lines, multipliers = version_diff(before=against, after=version)
        user = self.request.user
        assigned = card_assignments_in_force(rate_card=version.rate_card, at=timezone.now())
        return super().get_context_data(
            version=version,
            against=against,
            others=others,
            lines=lines,
            multipliers=multipliers,
            changed=sum(1 for line in lines if line.change != "same"),
            catalogs=CostCatalogVersion.objects.filter(status=PublishStatus.DRAFT),
            simulations=Simulation.objects.filter(version=version)[:5],
            default_days=DEFAULT_DAYS,
            assigned=assigned,
            may_publish=user.has_perm(PUBLISH_PERMISSION),
            **kwargs,
        )


class SimulationStartAction(StaffPage):
    """POST: a simulation of a draft version (and/or a draft cost catalog) over the last N
    days; then its page."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        version = get_object_or_404(RateCardVersion, pk=_int(request.POST.get("version"), 0))
        catalog_id = _int(request.POST.get("cost_catalog"), 0)
        catalog = get_object_or_404(CostCatalogVersion, pk=catalog_id) if catalog_id else None
        try:
            simulation = simulation_request(
                user=request.user,  # type: ignore[arg-type]
                version=version,
                cost_catalog=catalog,
                days=_days(request.POST.get("days", "")),
            )
        except SimulationInputError as error:
            messages.error(request, str(error))
            return redirect("insights:version", version_id=version.pk)
        return redirect("insights:simulation", simulation_id=simulation.pk)


class VersionPublishAction(StaffPage):
    """POST: publish a draft with a notice period and a reason (the permission is checked by
    the staff action; a staff user without it gets 403)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        version = get_object_or_404(RateCardVersion, pk=kwargs["version_id"])
        try:
            staff_version_publish(
                user=request.user,  # type: ignore[arg-type]
                version=version,
                notice_days=_int(request.POST.get("notice_days"), -1),
                reason=request.POST.get("reason", ""),
            )
        except (ReasonRequired, ValueError, CreditlineError) as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"Published v{version.number}.")
        return redirect("insights:version", version_id=version.pk)


@dataclass(frozen=True)
class Figures:
    """A row of a simulation's stored figures, with its Decimals back."""

    name: str
    currency: str
    cogs_currency: str
    events: int
    events_refused: int
    events_without_cost: int
    credits_before: Decimal
    credits_after: Decimal
    revenue_before: Decimal
    revenue_after: Decimal
    cogs_before: Decimal
    cogs_after: Decimal
    margin_before: Decimal | None
    margin_after: Decimal | None
    tenant_id: int | None = None
    pinned: str | None = None
    # Costs in another currency than the revenue (insights/simulator.py): converted at the
    # vendor's rates of `rates`, or no margin for want of a rate (`no_rate`).
    converted: bool = False
    cogs_before_converted: Decimal | None = None
    cogs_after_converted: Decimal | None = None
    rates: str = ""
    no_rate: bool = False

    @classmethod
    def of(cls, row: dict[str, Any]) -> "Figures":
        def dec(name: str) -> Decimal | None:
            return None if row.get(name) is None else Decimal(row[name])

        return cls(
            name=row.get("name", "Total"),
            tenant_id=row.get("tenant_id"),
            pinned=row.get("pinned"),
            currency=row["currency"],
            cogs_currency=row["cogs_currency"],
            events=row["events"],
            events_refused=row["events_refused"],
            events_without_cost=row["events_without_cost"],
            credits_before=Decimal(row["credits_before"]),
            credits_after=Decimal(row["credits_after"]),
            revenue_before=Decimal(row["revenue_before"]),
            revenue_after=Decimal(row["revenue_after"]),
            cogs_before=Decimal(row["cogs_before"]),
            cogs_after=Decimal(row["cogs_after"]),
            margin_before=dec("margin_before"),
            margin_after=dec("margin_after"),
            converted=bool(row.get("converted")),
            cogs_before_converted=dec("cogs_before_converted"),
            cogs_after_converted=dec("cogs_after_converted"),
            rates=row.get("rates", ""),
            no_rate=bool(row.get("no_rate")),
        )

    @property
    def credits_change(self) -> Decimal:
        return self.credits_after - self.credits_before


class SimulationPage(StaffPage):
    """A simulation: its progress while it runs (htmx polls the progress block, ?part=progress,
    which answers with the whole page's body once done), then its figures."""

    template_name = "insights/simulation.html"
    nav_name = NAV_NAME

    def get_template_names(self) -> list[str]:
        if self.request.GET.get("part") == "progress":
            return ["insights/_simulation_body.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        simulation = get_object_or_404(
            Simulation.objects.select_related("version__rate_card", "cost_catalog"),
            pk=kwargs["simulation_id"],
        )
        result = simulation.result or {}
        customers = [Figures.of(row) for row in result.get("customers", [])]
        by_tenant = {(c.tenant_id, c.currency): c for c in customers}
        affected = [
            c
            for tid in result.get("most_affected", [])
            for (t, _), c in by_tenant.items()
            if t == tid
        ]
        return super().get_context_data(
            simulation=simulation,
            done=simulation.status == Simulation.Status.DONE,
            customers=customers,
            affected=affected,
            totals=[Figures.of(row) for row in result.get("totals", [])],
            stale=simulation.status == Simulation.Status.DONE
            and simulation_is_stale(simulation=simulation),
            **kwargs,
        )


class WeightsDraftAction(WeightsPage):
    """POST from the suggested-weights page (its own query string): the suggestions, made
    again from the same inputs, become a draft of the default card; then the draft's page."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.has_perm(DRAFT_PERMISSION):
            raise PermissionDenied(f"This needs the permission {DRAFT_PERMISSION}.")
        context = self.get_context_data()
        version = context["version"]
        weights = [
            (w.action, w.model_class, w.suggested) for w in context["suggested"] if w.suggested
        ]
        if version is None or not weights or context["errors"]:
            messages.error(request, "There are no suggested weights to make a draft of.")
            return redirect(f"{request.path.removesuffix('draft/')}?{request.GET.urlencode()}")
        try:
            draft = staff_weights_draft(
                user=request.user,  # type: ignore[arg-type]
                rate_card=version.rate_card,
                weights=weights,
                reason=request.POST.get("reason", ""),
            )
        except (ReasonRequired, CreditlineError) as error:
            messages.error(request, str(error))
            return redirect(f"{request.path.removesuffix('draft/')}?{request.GET.urlencode()}")
        made = f"{len(weights)} weight{'' if len(weights) == 1 else 's'}"
        messages.success(request, f"Draft v{draft.number} made from {made}.")
        return redirect("insights:version", version_id=draft.pk)
