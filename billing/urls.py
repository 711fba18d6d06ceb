"""The fake gateway's hosted pages (billing/views.py), and the old addresses of the customer's
billing pages, which the portal serves now (billing/links.py)."""

from django.urls import path

from billing import links, views

app_name = "billing"

urlpatterns = [
    path("checkout/fake/<int:top_up_id>/", views.fake_checkout, name="fake-checkout"),
    path("cards/fake-setup/", views.fake_card_setup, name="fake-card-setup"),
    path("top-ups/<int:top_up_id>/receipt/", views.fake_receipt, name="topup-receipt"),
    path("plan/invoices/<str:reference>/", views.fake_invoice, name="plan-invoice"),
    path(
        "contract-invoices/<int:invoice_id>/",
        views.fake_contract_invoice,
        name="contract-invoice",
    ),
    # Moved to the portal.
    path("", views.moved(links.BUY), name="balance"),
    path("top-ups/", views.moved(links.BUY)),
    path("top-ups/<int:top_up_id>/pay/", views.moved("/buy/{top_up_id}/pay/")),
    path("top-ups/<int:top_up_id>/cancel/", views.moved("/buy/{top_up_id}/cancel/")),
    path("auto-top-up/", views.moved(links.AUTO_TOP_UP)),
    path("payment-method/", views.moved(links.PAYMENT_METHODS)),
    path("payment-method/remove/", views.moved(f"{links.PAYMENT_METHODS}remove/")),
    path("plan/", views.moved(links.PLAN)),
    path("plan/subscribe/", views.moved(f"{links.PLAN}subscribe/")),
    path("plan/change/", views.moved(f"{links.PLAN}change/")),
    path("plan/cancel/", views.moved(f"{links.PLAN}cancel/")),
]
