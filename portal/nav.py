"""The portal's navigation: one entry per page, in the order the sidebar shows them. A page
joins the nav by adding its entry here; an entry a role cannot use is not shown."""

from dataclasses import dataclass

from django.urls import reverse

from portal.access import Access, Capability


@dataclass(frozen=True)
class NavEntry:
    section: str
    label: str
    url_name: str
    needs: Capability = Capability.READ


ENTRIES: tuple[NavEntry, ...] = (
    NavEntry("overview", "Overview", "portal:overview"),
    # The read pages: where the credits went and what they buy.
    NavEntry("usage", "Usage", "portal:usage"),
    NavEntry("statement", "Statement", "portal:statement"),
    NavEntry("buckets", "Buckets", "portal:buckets"),
    NavEntry("workflows", "Workflows", "portal:workflows"),
    # The money pages: every member sees them; what a role cannot do is not offered on them.
    NavEntry("buy", "Buy credits", "portal:buy"),
    NavEntry("payment-methods", "Payment methods", "portal:payment-methods"),
    NavEntry("auto-top-up", "Auto top-up", "portal:auto-top-up"),
    NavEntry("plan", "Plan", "portal:plan"),
    NavEntry("rate_card", "Rate card", "portal:rate-card"),
    NavEntry("estimator", "Estimator", "portal:estimator"),
    # The management pages: every member reads them; owners and admins change them.
    NavEntry("alerts", "Alerts & soft cap", "portal:alerts"),
    NavEntry("keys", "API keys", "portal:keys"),
    NavEntry("webhooks", "Webhooks", "portal:webhooks"),
    NavEntry("team", "Team", "portal:team"),
)


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    current: bool


def nav_for(access: Access, *, current: str) -> list[NavLink]:
    return [
        NavLink(entry.label, reverse(entry.url_name), entry.section == current)
        for entry in ENTRIES
        if access.allows(entry.needs)
    ]
