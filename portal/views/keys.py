"""API keys: create one (its plaintext shown once), list them, revoke one. Through tenants'
services; a revoked key is refused by every process from its next request (the config stamp,
tenants/cache.py)."""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from portal.access import Capability
from portal.base import PortalView
from portal.views.secrets import shown_once
from tenants.models import ApiKey
from tenants.selectors import api_key_list
from tenants.services import DEFAULT_SCOPES, api_key_create, api_key_revoke


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        initial=list(DEFAULT_SCOPES),
        error_messages={"required": "Choose at least one scope."},
    )


SCOPE_HELP: dict[str, str] = {
    ApiKey.Scope.READ: "balance, usage, statement, rate card",
    ApiKey.Scope.WRITE: "report usage, run workflows",
    ApiKey.Scope.BILLING: "buy credits, auto top-up, webhook endpoints",
}


class ApiKeysPage(PortalView):
    template_name = "portal/keys.html"
    section = "keys"
    requires = {"POST": Capability.MANAGE}

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(ApiKeyForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ApiKeyForm(request.POST)
        if not form.is_valid():
            return self._render(form, status=422)
        issued = api_key_create(
            tenant=self.tenant, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"]
        )
        return shown_once(self._render(ApiKeyForm(), issued=issued))

    def _render(self, form: ApiKeyForm, *, status: int = 200, **extra: Any) -> HttpResponse:
        checked = set(form["scopes"].value() or [])
        scopes = [
            {"value": value, "label": label, "help": SCOPE_HELP[value], "checked": value in checked}
            for value, label in ApiKey.Scope.choices
        ]
        context = {"keys": api_key_list(tenant=self.tenant), "form": form, "scopes": scopes}
        return self.page({**context, **extra}, status=status)


class ApiKeyRevokePage(PortalView):
    section = "keys"
    requires = {"POST": Capability.MANAGE}

    def post(self, request: HttpRequest, key_id: int) -> HttpResponse:
        api_key = api_key_list(tenant=self.tenant).filter(pk=key_id).first()
        if api_key is None:
            raise Http404("You have no API key with that id.")
        api_key_revoke(api_key=api_key)
        messages.success(
            request, f"Key “{api_key.name}” ({api_key.prefix}…) is revoked: it no longer works."
        )
        return HttpResponseRedirect(reverse("portal:keys"))
