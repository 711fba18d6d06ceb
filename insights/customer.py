"""One customer on the console: its balance and live buckets (the ledger's account row and
bucket page), its contracts, its usage and its margin by workflow and by action (the rollups),
a page of its statement. A fixed number of statements whatever the size of its ledger."""

from dataclasses import dataclass
from datetime import date

from django.db.models import prefetch_related_objects

from billing.models import Contract, Subscription
from insights.selectors import MarginRow, margin_list
from ledger.models import CreditBucket, LedgerEntry
from ledger.selectors import Balance, balance_get
from ledger.statement_selectors import bucket_page, statement_page
from metering.rollup_selectors import UsageRow, usage_table
from tenants.keyset import Page
from tenants.models import Tenant

STATEMENT_PAGE = 25


@dataclass(frozen=True)
class CustomerView:
    tenant: Tenant
    balance: Balance
    subscription: Subscription | None
    buckets: Page[CreditBucket]
    contracts: list[Contract]
    usage: list[UsageRow]
    by_workflow: list[MarginRow]
    by_action: list[MarginRow]
    statement: Page[LedgerEntry]


def customer_get(*, tenant: Tenant, start: date, end: date, after: int | None) -> CustomerView:
    """The customer page's reads; `after`: the statement entry the page starts after."""
    statement = statement_page(tenant=tenant, after=after, limit=STATEMENT_PAGE)
    # Who made each staff move: one query for the page, not one per entry.
    prefetch_related_objects(statement.rows, "transaction__actor")
    return CustomerView(
        tenant=tenant,
        balance=balance_get(tenant=tenant),
        subscription=Subscription.objects.select_related("plan")
        .filter(tenant=tenant)
        .order_by("-created_at")
        .first(),
        buckets=bucket_page(tenant=tenant, show_all=False, limit=50),
        contracts=list(
            Contract.objects.filter(tenant=tenant)
            .select_related("rate_card", "pinned_version")
            .order_by("-start_at")
        ),
        usage=usage_table(
            tenant=tenant, since=start, until=end, group_by=("action", "model_class")
        ),
        by_workflow=margin_list(start=start, end=end, by="workflow", tenant=tenant),
        by_action=margin_list(start=start, end=end, by="action", tenant=tenant),
        statement=statement,
    )
