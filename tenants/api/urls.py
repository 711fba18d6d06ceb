from django.urls import path

from tenants.api.views import TenantDetailApi

urlpatterns = [
    path("tenant", TenantDetailApi.as_view(), name="tenant-detail"),
]
