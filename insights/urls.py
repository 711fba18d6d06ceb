from django.urls import path

from insights import customer_views, plan_fit_views, views

app_name = "insights"

urlpatterns = [
    path("", views.CustomersPage.as_view(), name="customers"),
    path("customers/<int:tenant_id>/", customer_views.CustomerPage.as_view(), name="customer"),
    path("margin/", views.MarginPage.as_view(), name="margin"),
    path("breakage/", views.BreakagePage.as_view(), name="breakage"),
    path("plan-fit/", plan_fit_views.PlanFitPage.as_view(), name="plan-fit"),
    path("weights/", views.WeightsPage.as_view(), name="weights"),
    path("reconciliation/", views.ReconciliationPage.as_view(), name="reconciliation"),
]
