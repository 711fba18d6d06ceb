from django.urls import include, path

from portal.views import (
    buckets,
    buy,
    estimator,
    payments,
    plan,
    rate_card,
    statement,
    usage,
    workflows,
)
from portal.views.overview import OverviewPage

app_name = "portal"

urlpatterns = [
    path("", OverviewPage.as_view(), name="overview"),
    # The read pages.
    path("statement/", statement.StatementPage.as_view(), name="statement"),
    path("statement.csv", statement.StatementCsv.as_view(), name="statement-csv"),
    path("usage/", usage.UsagePage.as_view(), name="usage"),
    path("usage/exports/", usage.UsageExportCreate.as_view(), name="usage-export-create"),
    path("usage/exports/<int:export_id>/", usage.UsageExportPage.as_view(), name="usage-export"),
    path(
        "usage/exports/<int:export_id>/download",
        usage.UsageExportDownload.as_view(),
        name="usage-export-download",
    ),
    path("buckets/", buckets.BucketsPage.as_view(), name="buckets"),
    path("workflows/", workflows.WorkflowsPage.as_view(), name="workflows"),
    path("workflows/<int:workflow_id>/", workflows.WorkflowPage.as_view(), name="workflow"),
    path("rate-card/", rate_card.RateCardPage.as_view(), name="rate-card"),
    # The money pages (billing/links.py names these paths for billing).
    path("buy/", buy.BuyPage.as_view(), name="buy"),
    path("buy/<int:top_up_id>/pay/", buy.TopUpPay.as_view(), name="topup-pay"),
    path("buy/<int:top_up_id>/cancel/", buy.TopUpCancel.as_view(), name="topup-cancel"),
    path("buy/receipts/<int:top_up_id>/", buy.TopUpReceipt.as_view(), name="topup-receipt"),
    path("payment-methods/", payments.PaymentMethodsPage.as_view(), name="payment-methods"),
    path(
        "payment-methods/remove/",
        payments.PaymentMethodRemove.as_view(),
        name="payment-method-remove",
    ),
    path("auto-top-up/", payments.AutoTopUpPage.as_view(), name="auto-top-up"),
    path("plan/", plan.PlanPage.as_view(), name="plan"),
    path("plan/subscribe/", plan.PlanSubscribe.as_view(), name="plan-subscribe"),
    path("plan/change/", plan.PlanChange.as_view(), name="plan-change"),
    path("plan/cancel/", plan.PlanCancel.as_view(), name="plan-cancel"),
    # The estimator: the member's own, and a public one (no login) for the vendor's pricing page.
    path("estimator/", estimator.EstimatorPage.as_view(), name="estimator"),
    path("pricing/estimate/", estimator.PublicEstimatorPage.as_view(), name="estimate-public"),
    # The management pages: API keys, webhooks, team, alerts (portal/manage_urls.py).
    path("", include("portal.manage_urls")),
]
