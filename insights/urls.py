"""The vendor console's one URLconf, under /console/ (config/urls.py), namespace `insights`."""

from django.urls import path

from insights import (
    contract_views,
    customer_views,
    fx_views,
    plan_fit_views,
    reconcile_views,
    views,
)
from insights import ratecard_views as rates

app_name = "insights"

urlpatterns = [
    path("", views.CustomersPage.as_view(), name="customers"),
    path("customers/<int:tenant_id>/", customer_views.CustomerPage.as_view(), name="customer"),
    path("contracts/", contract_views.ContractsPage.as_view(), name="contracts"),
    path("contracts/new/", contract_views.ContractCreatePage.as_view(), name="contract-new"),
    path("contracts/<int:contract_id>/", contract_views.ContractPage.as_view(), name="contract"),
    path("margin/", views.MarginPage.as_view(), name="margin"),
    path("breakage/", views.BreakagePage.as_view(), name="breakage"),
    path("plan-fit/", plan_fit_views.PlanFitPage.as_view(), name="plan-fit"),
    path("weights/", views.WeightsPage.as_view(), name="weights"),
    path("reconciliation/", reconcile_views.ReconciliationPage.as_view(), name="reconciliation"),
    path("exchange-rates/", fx_views.ExchangeRatesPage.as_view(), name="exchange-rates"),
    # Rate cards and the simulator.
    path("rate-cards/", rates.RateCardsPage.as_view(), name="ratecards"),
    path(
        "rate-cards/versions/<int:version_id>/",
        rates.RateCardVersionPage.as_view(),
        name="version",
    ),
    path(
        "rate-cards/versions/<int:version_id>/publish/",
        rates.VersionPublishAction.as_view(),
        name="publish",
    ),
    path("simulations/", rates.SimulationStartAction.as_view(), name="simulate"),
    path("simulations/<int:simulation_id>/", rates.SimulationPage.as_view(), name="simulation"),
    path("weights/draft/", rates.WeightsDraftAction.as_view(), name="weights_draft"),
]
