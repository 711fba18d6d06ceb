from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("", views.balance_page, name="balance"),
    path("top-ups/", views.topup_buy, name="topup-buy"),
    path("checkout/fake/<int:top_up_id>/", views.fake_checkout, name="fake-checkout"),
    path("auto-top-up/", views.auto_topup_page, name="auto-top-up"),
    path("payment-method/", views.payment_method_save, name="payment-method"),
]
