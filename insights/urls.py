from django.urls import path

from insights import views

app_name = "insights"

urlpatterns = [
    path("", views.CustomersPage.as_view(), name="customers"),
    path("margin/", views.MarginPage.as_view(), name="margin"),
    path("breakage/", views.BreakagePage.as_view(), name="breakage"),
    path("weights/", views.WeightsPage.as_view(), name="weights"),
    path("reconciliation/", views.ReconciliationPage.as_view(), name="reconciliation"),
]
