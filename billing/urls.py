from django.urls import path

from billing import views, views_payments, views_plan

app_name = "billing"

urlpatterns = [
    path("", views.balance_page, name="balance"),
    path("top-ups/", views.topup_buy, name="topup-buy"),
    path("checkout/fake/<int:top_up_id>/", views.fake_checkout, name="fake-checkout"),
    path("auto-top-up/", views.auto_topup_page, name="auto-top-up"),
    path("plan/", views_plan.plan_page, name="plan"),
    path("plan/subscribe/", views_plan.plan_subscribe, name="plan-subscribe"),
    path("plan/change/", views_plan.plan_change, name="plan-change"),
    path("plan/cancel/", views_plan.plan_cancel, name="plan-cancel"),
    path("plan/invoices/<str:reference>/", views_plan.plan_invoice, name="plan-invoice"),
    path("payment-method/", views_payments.payment_method_setup, name="payment-method"),
    path(
        "payment-method/remove/",
        views_payments.payment_method_remove_view,
        name="payment-method-remove",
    ),
    path("cards/fake-setup/", views_payments.fake_card_setup, name="fake-card-setup"),
    path("top-ups/<int:top_up_id>/pay/", views_payments.topup_pay, name="topup-pay"),
    path("top-ups/<int:top_up_id>/cancel/", views_payments.topup_cancel_view, name="topup-cancel"),
    path("top-ups/<int:top_up_id>/receipt/", views_payments.topup_receipt, name="topup-receipt"),
]
