from django.urls import path

from portal.views import buy, estimator, payments, plan
from portal.views.overview import OverviewPage

app_name = "portal"

urlpatterns = [
    path("", OverviewPage.as_view(), name="overview"),
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
]
