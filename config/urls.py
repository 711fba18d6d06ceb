from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from config.errors import api_not_found
from config.health import healthz
from tenants.api.docs import DocsApi, SchemaApi

api_v1 = [
    path("", include("tenants.api.urls")),
    path("", include("ledger.api.urls")),
    path("", include("ratecards.api.urls")),
    path("", include("metering.api.urls")),
    path("", include("billing.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SchemaApi.as_view(), name="schema"),
    path("api/docs/", DocsApi.as_view(url_name="schema"), name="api-docs"),
    # Any other path under /api/ (a typo, a trailing slash) is a JSON 404 at once: never a
    # redirect to the slashed path, never Django's HTML page.
    re_path(r"^api/", api_not_found),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("billing/", include("billing.urls")),
    # The vendor's console (staff only).
    path("console/", include("insights.urls")),
    path("", include("portal.urls")),
]

handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
