"""The portal's landing page: which tenants the signed-in user belongs to."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.selectors import tenant_list_for_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    tenants = tenant_list_for_user(user=request.user)  # type: ignore[arg-type]
    return render(request, "portal/home.html", {"tenants": tenants})
