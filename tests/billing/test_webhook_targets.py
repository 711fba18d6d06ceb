"""Outgoing webhooks go to public https targets only: http, literal addresses and local names
are refused when the endpoint is created (422 naming `url`), hosts resolving to loopback,
private, link-local or reserved addresses (also through NAT64, 6to4 or IPv4-mapped IPv6) are
refused at every delivery (unless WEBHOOKS_ALLOW_PRIVATE_TARGETS), and a redirect is never
followed."""

import ipaddress
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
from billing.services.webhook_targets import address_refused
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


def refusal(url: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "invalid_webhook_url",
            "message": message,
            "url": url,
            "fields": {"url": [message]},
        }
    }


@pytest.mark.django_db
def test_an_http_endpoint_is_refused_on_a_server(
    tenant: Tenant, public_only: None, api_client: APIClient
) -> None:
    url = "http://hooks.example.com/in"
    with pytest.raises(InvalidWebhookUrl) as refused:
        webhook_endpoint_create(tenant=tenant, url=url)
    assert refused.value.message == "A webhook endpoint URL must be https."

    response = api_client.post("/api/v1/webhook-endpoints", {"url": url}, format="json")

    assert response.status_code == 422
    assert response.json() == refusal(url, "A webhook endpoint URL must be https.")
    assert not WebhookEndpoint.objects.exists()


# (the host as written in the URL, what the refusal says it is: the IPv4 address that a
# mapped, 6to4 or NAT64 address reaches)
NON_PUBLIC_LITERALS = [
    ("127.0.0.1", None),  # loopback
    ("10.1.2.3", None),  # private
    ("192.168.0.10", None),  # private
    ("169.254.169.254", None),  # link-local: the cloud metadata service
    ("100.64.0.1", None),  # shared address space (carrier-grade NAT)
    ("240.0.0.1", None),  # reserved
    ("0.0.0.0", None),  # "this host"
    ("2130706433", "127.0.0.1"),  # 127.0.0.1 as one number
    ("0x7f.1", "127.0.0.1"),  # hex and a short form
    ("[::1]", None),  # loopback (IPv6)
    ("[fd00::1]", None),  # unique local
    ("[fe80::1]", None),  # link-local
    ("[::ffff:10.0.0.1]", "10.0.0.1"),  # IPv4-mapped private
    ("[::ffff:127.0.0.1]", "127.0.0.1"),  # IPv4-mapped loopback
    ("[64:ff9b::a9fe:a9fe]", "169.254.169.254"),  # NAT64 of the metadata service
    ("[64:ff9b::7f00:1]", "127.0.0.1"),  # NAT64 of loopback
    ("[64:ff9b:1::a00:1]", None),  # a local-use NAT64 prefix: private by definition
    ("[2002:a00:1::1]", "10.0.0.1"),  # 6to4 of a private address
    ("[2002:7f00:1::]", "127.0.0.1"),  # 6to4 of loopback
    ("[::a00:1]", None),  # IPv4-compatible (deprecated)
    ("[ff02::1]", None),  # multicast
]


def refused_message(tenant: Tenant, url: str) -> str:
    with pytest.raises(InvalidWebhookUrl) as refused:
        webhook_endpoint_create(tenant=tenant, url=url)
    assert refused.value.details == {"url": url, "fields": {"url": [refused.value.message]}}
    return refused.value.message


@pytest.mark.django_db
@pytest.mark.parametrize(("host", "reached"), NON_PUBLIC_LITERALS)
def test_a_non_public_address_is_refused_at_creation(
    tenant: Tenant, public_only: None, host: str, reached: str | None
) -> None:
    message = refused_message(tenant, f"https://{host}/hooks")

    is_what = f" {reached}," if reached else ""
    assert message == f"{host.strip('[]')} is{is_what} not a public address."
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "host", ["localhost", "api.localhost", "printer.local", "db.internal", "router", "LOCALHOST."]
)
def test_a_local_name_is_refused_at_creation(tenant: Tenant, public_only: None, host: str) -> None:
    message = refused_message(tenant, f"https://{host}/hooks")

    assert message == f"{host.lower()} is a local name, not a public host."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://127.0.0.1/hooks", "127.0.0.1 is not a public address."),
        (
            "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",
            "64:ff9b::a9fe:a9fe is 169.254.169.254, not a public address.",
        ),
        ("https://[2002:a00:1::1]/in", "2002:a00:1::1 is 10.0.0.1, not a public address."),
        ("https://localhost:8443/in", "localhost is a local name, not a public host."),
    ],
)
def test_the_api_refuses_a_private_target_with_a_422_naming_url(
    public_only: None, api_client: APIClient, url: str, message: str
) -> None:
    response = api_client.post("/api/v1/webhook-endpoints", {"url": url}, format="json")

    assert response.status_code == 422
    assert response.json() == refusal(url, message)
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/in",
        "https://8.8.8.8/in",
        "https://[64:ff9b::808:808]/in",  # NAT64 of a public address
        "https://[2002:808:808::1]/in",  # 6to4 of a public address
        "https://[::ffff:8.8.8.8]/in",  # IPv4-mapped public address
        "https://[2606:4700::1111]:8443/in",
    ],
)
def test_a_public_target_is_accepted(public_only: None, api_client: APIClient, url: str) -> None:
    response = api_client.post("/api/v1/webhook-endpoints", {"url": url}, format="json")

    assert response.status_code == 201
    assert response.json()["url"] == url


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("64:ff9b::a00:1", True),
        ("64:ff9b::808:808", False),
        ("2002:c0a8:1::1", True),
        ("2002:808:808::1", False),
        ("::ffff:192.168.1.1", True),
        ("::ffff:8.8.8.8", False),
        ("::808:808", True),  # IPv4-compatible: never a real target
        ("2001::1", True),  # Teredo
        ("2001:db8::1", True),  # documentation
        ("2606:4700::1111", False),
        ("100::1", True),  # discard-only
    ],
)
def test_the_address_rule(address: str, refused: bool) -> None:
    assert address_refused(ipaddress.ip_address(address)) is refused


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "10.1.2.3",  # private
        "169.254.169.254",  # link-local: the cloud metadata service
        "::1",  # loopback (IPv6)
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
    ],
)
def test_a_non_public_target_saved_in_development_is_refused_at_delivery(
    tenant: Tenant, settings: Any, address: str
) -> None:
    host = f"[{address}]" if ":" in address else address
    webhook_endpoint_create(tenant=tenant, url=f"https://{host}:9/hooks")
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    settings.DEBUG = False

    attempt = announce(tenant)

    assert (attempt.status_code, attempt.error) == (
        None,
        f"Refused: {address} resolves to {address}, not a public address.",
    )


@pytest.mark.django_db(transaction=True)
def test_a_host_name_is_checked_by_what_it_resolves_to(tenant: Tenant, settings: Any) -> None:
    webhook_endpoint_create(tenant=tenant, url="https://localhost:9/hooks")
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    settings.DEBUG = False

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
