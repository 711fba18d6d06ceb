"""The console's rate-card pages, under /console/ beside insights/urls.py (config/urls.py)."""

from django.urls import path

from insights import ratecard_views as views

app_name = "console_rates"

urlpatterns = [
    path("rate-cards/", views.RateCardsPage.as_view(), name="ratecards"),
    path(
        "rate-cards/versions/<int:version_id>/",
        views.RateCardVersionPage.as_view(),
        name="version",
    ),
    path(
        "rate-cards/versions/<int:version_id>/publish/",
        views.VersionPublishAction.as_view(),
        name="publish",
    ),
    path("simulations/", views.SimulationStartAction.as_view(), name="simulate"),
    path("simulations/<int:simulation_id>/", views.SimulationPage.as_view(), name="simulation"),
    path("weights/draft/", views.WeightsDraftAction.as_view(), name="weights_draft"),
]
