"""Overview: what the tenant has to spend, now."""

from django.http import HttpRequest, HttpResponse

from ledger.selectors import balance_get
from portal.base import PortalView


class OverviewPage(PortalView):
    template_name = "portal/overview.html"
    section = "overview"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page({"balance": balance_get(tenant=self.tenant)})
