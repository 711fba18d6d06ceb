from django.urls import URLPattern, path

from ratecards.api.views import RateCardDetailApi

urlpatterns: list[URLPattern] = [
    path("rate-card", RateCardDetailApi.as_view(), name="rate-card-detail"),
]
