"""Buckets: where the tenant's credits live. Live ones in the order the next debit draws them;
with the toggle, every bucket (live, spent, expired) newest first. Each is labelled by its
source (a promotion is a promotion, whatever its expiry policy)."""

from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from billing.display import credit_display_get
from ledger.models import CreditBucket
from ledger.statement_selectors import bucket_page
from portal.base import PortalView
from portal.paging import PAGE_SIZE, after_param


@dataclass(frozen=True)
class BucketRow:
    bucket: CreditBucket
    status: str  # "Live", "Spent" or "Expired"


def bucket_status(bucket: CreditBucket, now: datetime) -> str:
    if bucket.expires_at is not None and bucket.expires_at <= now:
        return "Expired"
    return "Live" if bucket.remaining > 0 else "Spent"


class BucketsPage(PortalView):
    template_name = "portal/buckets.html"
    section = "buckets"

    def get(self, request: HttpRequest) -> HttpResponse:
        show_all = request.GET.get("show") == "all"
        page = bucket_page(
            tenant=self.tenant, show_all=show_all, after=after_param(request), limit=PAGE_SIZE
        )
        now = timezone.now()
        rows = [BucketRow(bucket, bucket_status(bucket, now)) for bucket in page.rows]
        display = credit_display_get(tenant_id=self.tenant.pk)
        return self.page(
            {"page": page, "rows": rows, "show_all": show_all, "credit_display": display}
        )
