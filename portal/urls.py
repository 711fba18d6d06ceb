from django.urls import path

from portal.views.overview import OverviewPage

app_name = "portal"

urlpatterns = [
    path("", OverviewPage.as_view(), name="overview"),
]
