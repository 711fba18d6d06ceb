"""Outgoing webhooks go to public https targets only: http, and hosts resolving to loopback,
private, link-local or reserved addresses are refused (unless WEBHOOKS_ALLOW_PRIVATE_TARGETS),
and a redirect is never followed."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from billing.exceptions import InvalidWebhookUrl
from billing.models import WebhookAttempt, WebhookEndpoint
from billing.services import webhook_endpoint_create
from tenants.events import publish
from tenants.models import Tenant


@pytest.fixture
def public_only(settings: Any) -> None:
    settings.DEBUG = False
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False


def announce(tenant: Tenant) -> WebhookAttempt:
    with transaction.atomic():
        publish(tenant_id=tenant.pk, type="balance.low", data={})
    return WebhookAttempt.objects.get()


@pytest.mark.django_db
def test_an_http_endpoint_is_refused_on_a_server(
    tenant: Tenant, public_only: None, api_client: APIClient
) -> None:
    with pytest.raises(InvalidWebhookUrl) as refused:
        webhook_endpoint_create(tenant=tenant, url="http://hooks.example.com/in")
    assert (refused.value.message, refused.value.details) == (
        "A webhook endpoint URL must be https.",
        {"url": "http://hooks.example.com/in"},
    )

    response = api_client.post(
        "/api/v1/webhook-endpoints", {"url": "http://hooks.example.com/in"}, format="json"
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_webhook_url",
            "message": "A webhook endpoint URL must be https.",
            "url": "http://hooks.example.com/in",
        }
    }
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "10.1.2.3",  # private
        "192.168.0.10",  # private
        "169.254.169.254",  # link-local: the cloud metadata service
        "240.0.0.1",  # reserved
        "::1",  # loopback (IPv6)
    ],
)
def test_a_non_public_target_is_refused_at_delivery(
    tenant: Tenant, public_only: None, address: str
) -> None:
    host = f"[{address}]" if ":" in address else address
    webhook_endpoint_create(tenant=tenant, url=f"https://{host}:9/hooks")

    attempt = announce(tenant)

    assert (attempt.status_code, attempt.error) == (
        None,
        f"Refused: {address} resolves to {address}, not a public address.",
    )


@pytest.mark.django_db(transaction=True)
def test_a_host_name_is_checked_by_what_it_resolves_to(tenant: Tenant, public_only: None) -> None:
    webhook_endpoint_create(tenant=tenant, url="https://localhost:9/hooks")

    attempt = announce(tenant)

    assert attempt.status_code is None
    assert attempt.error.startswith("Refused: localhost resolves to ")
    assert attempt.error.endswith(", not a public address.")


@pytest.mark.django_db(transaction=True)
def test_an_http_endpoint_saved_in_development_is_not_delivered_on_a_server(
    tenant: Tenant, settings: Any
) -> None:
    webhook_endpoint_create(tenant=tenant, url="http://hooks.example.com/in")
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    settings.DEBUG = False

    attempt = announce(tenant)

    assert (attempt.status_code, attempt.error) == (
        None,
        "Refused: the http scheme is not allowed.",
    )


class Server:
    """Answers every POST with `status` (and a Location header); records the paths."""

    def __init__(self, status: int, location: str = "") -> None:
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                server.paths.append(self.path)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                server.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    inside = Server(200)
    redirecting = Server(302, location=f"{inside.url}/internal-admin")
    for s in (inside, redirecting):
        threading.Thread(target=s.http.serve_forever, daemon=True).start()
    yield redirecting, inside
    for s in (inside, redirecting):
        s.http.shutdown()
        s.http.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_redirect_is_not_followed(tenant: Tenant, servers: tuple[Server, Server]) -> None:
    redirecting, inside = servers
    webhook_endpoint_create(tenant=tenant, url=f"{redirecting.url}/hooks")

    attempt = announce(tenant)

    assert (attempt.status_code, attempt.error) == (302, "")
    assert redirecting.paths == ["/hooks"]
    assert inside.paths == []
