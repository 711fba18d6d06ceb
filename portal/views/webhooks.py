"""Webhook endpoints: add one (its signing secret shown once), choose its event types from the
catalogue, send it a test event, read its deliveries and the answers they got, rotate its
secret, delete it. Through billing's webhook services."""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from billing.models import WebhookEndpoint
from billing.services.webhook_targets import WEBHOOK_EVENT_TYPES
from billing.services.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_test_send,
)
from billing.webhook_selectors import (
    webhook_delivery_list,
    webhook_endpoint_get,
    webhook_endpoint_list,
)
from portal.access import Capability
from portal.base import PortalView
from portal.views.secrets import shown_once
from tenants.exceptions import CreditlineError

NOT_FOUND = "You have no webhook endpoint with that id."


class EndpointForm(forms.Form):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in WEBHOOK_EVENT_TYPES], required=False
    )


class WebhooksPage(PortalView):
    template_name = "portal/webhooks.html"
    section = "webhooks"
    requires = {"POST": Capability.MANAGE}

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(EndpointForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = EndpointForm(request.POST)
        if not form.is_valid():
            return self._render(form, status=422)
        try:
            endpoint = webhook_endpoint_create(
                tenant=self.tenant,
                url=form.cleaned_data["url"],
                event_types=form.cleaned_data["event_types"],
            )
        except CreditlineError as exc:
            form.add_error("url", exc.message)
            return self._render(form, status=422)
        return shown_once(self._render(EndpointForm(), created=endpoint))

    def _render(self, form: EndpointForm, *, status: int = 200, **extra: Any) -> HttpResponse:
        chosen = set(form["event_types"].value() or [])
        context = {
            "endpoints": webhook_endpoint_list(tenant=self.tenant),
            "form": form,
            "event_types": [(t, t in chosen) for t in WEBHOOK_EVENT_TYPES],
        }
        return self.page({**context, **extra}, status=status)


class _EndpointView(PortalView):
    section = "webhooks"

    def endpoint(self, endpoint_id: int) -> WebhookEndpoint:
        endpoint = webhook_endpoint_get(tenant=self.tenant, endpoint_id=endpoint_id)
        if endpoint is None:
            raise Http404(NOT_FOUND)
        return endpoint

    def detail(self, endpoint: WebhookEndpoint, **extra: Any) -> HttpResponse:
        deliveries = webhook_delivery_list(tenant=self.tenant, endpoint=endpoint)
        return self.page({"endpoint": endpoint, "deliveries": deliveries, **extra})

    def back(self, endpoint: WebhookEndpoint) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("portal:webhook", args=[endpoint.pk]))


class WebhookPage(_EndpointView):
    template_name = "portal/webhook.html"

    def get(self, request: HttpRequest, endpoint_id: int) -> HttpResponse:
        return self.detail(self.endpoint(endpoint_id))


class WebhookTestPage(_EndpointView):
    requires = {"POST": Capability.MANAGE}

    def post(self, request: HttpRequest, endpoint_id: int) -> HttpResponse:
        endpoint = self.endpoint(endpoint_id)
        try:
            webhook_endpoint_test_send(endpoint=endpoint)
        except WebhookEndpoint.DoesNotExist:  # deleted since it was read
            raise Http404(NOT_FOUND) from None
        messages.success(request, "Test event sent: its delivery is at the top of the list.")
        return self.back(endpoint)


class WebhookRotatePage(_EndpointView):
    template_name = "portal/webhook.html"
    requires = {"POST": Capability.MANAGE}

    def post(self, request: HttpRequest, endpoint_id: int) -> HttpResponse:
        try:
            endpoint = webhook_endpoint_secret_rotate(endpoint=self.endpoint(endpoint_id))
        except WebhookEndpoint.DoesNotExist:  # deleted since it was read
            raise Http404(NOT_FOUND) from None
        return shown_once(self.detail(endpoint, rotated=endpoint.secret))


class WebhookDeletePage(_EndpointView):
    requires = {"POST": Capability.MANAGE}

    def post(self, request: HttpRequest, endpoint_id: int) -> HttpResponse:
        endpoint = self.endpoint(endpoint_id)
        webhook_endpoint_delete(endpoint=endpoint)
        messages.success(request, f"Endpoint {endpoint.url} deleted: nothing more is sent to it.")
        return HttpResponseRedirect(reverse("portal:webhooks"))
