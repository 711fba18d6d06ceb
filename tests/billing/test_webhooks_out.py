"""Outgoing webhooks: Standard Webhooks signatures checked by an independent verifier, retries
with backoff against a receiver that answers 500, and the attempt log."""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import time_machine
from django.db import transaction

from billing.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing.services import webhook_deliver_due, webhook_endpoint_create
from tenants.events import publish
from tenants.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)
START = datetime(2026, 5, 4, 9, tzinfo=UTC)


def verify_standard_webhook(
    secret: str, headers: dict[str, str], body: bytes, now: float, tolerance: int = 300
) -> bool:
    """Written from the Standard Webhooks spec, sharing no code with billing.signing."""
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(now - int(stamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    content = msg_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    for candidate in headers["webhook-signature"].split(" "):
        version, _, sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), expected):
            return True
    return False


class Receiver:
    def __init__(self) -> None:
        self.status = 200
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def announce(tenant: Tenant, type: str, data: dict[str, Any]) -> None:
    with transaction.atomic():
        publish(tenant_id=tenant.pk, type=type, data=data)


def test_a_delivery_is_signed_per_standard_webhooks(tenant: Tenant, receiver: Receiver) -> None:
    endpoint = webhook_endpoint_create(tenant=tenant, url=receiver.url)
    assert endpoint.secret.startswith("whsec_")
    assert len(base64.b64decode(endpoint.secret.removeprefix("whsec_"))) == 32

    announce(tenant, "workflow.suspended", {"workflow_id": 7, "step": "s3"})

    (headers, body) = receiver.requests[0]
    assert verify_standard_webhook(endpoint.secret, headers, body, now=time.time())
    assert not verify_standard_webhook(
        "whsec_" + base64.b64encode(b"x" * 32).decode(), headers, body, now=time.time()
    )
    assert not verify_standard_webhook(endpoint.secret, headers, body + b" ", now=time.time())
    payload = json.loads(body)
    assert (payload["type"], payload["data"]) == (
        "workflow.suspended",
        {"workflow_id": 7, "step": "s3"},
    )
    delivery = WebhookDelivery.objects.get()
    assert headers["webhook-id"] == delivery.event_id
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)


def test_endpoints_get_only_the_event_types_they_asked_for(
    tenant: Tenant, other_tenant: Tenant, receiver: Receiver
) -> None:
    webhook_endpoint_create(tenant=tenant, url=receiver.url, event_types=["balance.low"])
    webhook_endpoint_create(tenant=other_tenant, url=receiver.url)
    announce(tenant, "workflow.resumable", {})
    announce(tenant, "balance.low", {"threshold_percent": 20})
    assert [json.loads(b)["type"] for _, b in receiver.requests] == ["balance.low"]


def test_a_failing_receiver_gets_retries_with_backoff_and_every_attempt_is_logged(
    tenant: Tenant, receiver: Receiver
) -> None:
    receiver.status = 500
    endpoint = webhook_endpoint_create(tenant=tenant, url=receiver.url)
    with time_machine.travel(START, tick=False) as clock:
        announce(tenant, "topup.failed", {"top_up_id": 1})
        delivery = WebhookDelivery.objects.get()
        expected_next = [30, 120, 480, 1920, 7680]
        for n, wait in enumerate(expected_next, start=1):
            delivery.refresh_from_db()
            assert (delivery.status, delivery.attempts) == ("pending", n)
            assert delivery.next_attempt_at == clock_now(clock) + timedelta(seconds=wait)
            clock.shift(timedelta(seconds=wait - 1))
            assert webhook_deliver_due() == 0  # not yet due
            clock.shift(timedelta(seconds=1))
            assert webhook_deliver_due() == 1
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("failed", 6)
        assert webhook_deliver_due() == 0
    log = list(
        WebhookAttempt.objects.filter(delivery=delivery)
        .order_by("number")
        .values_list("number", "status_code", "at")
    )
    starts = [START]
    for wait in expected_next:
        starts.append(starts[-1] + timedelta(seconds=wait))
    assert log == [(n, 500, at) for n, at in zip(range(1, 7), starts, strict=True)]
    assert len(receiver.requests) == 6
    # Every retry carries the same message id, so a receiver can de-duplicate.
    assert {h["webhook-id"] for h, _ in receiver.requests} == {delivery.event_id}
    assert all(
        verify_standard_webhook(endpoint.secret, h, b, now=h_time(h)) for h, b in receiver.requests
    )


def test_a_receiver_that_recovers_gets_the_event(tenant: Tenant, receiver: Receiver) -> None:
    receiver.status = 503
    webhook_endpoint_create(tenant=tenant, url=receiver.url)
    with time_machine.travel(START, tick=False) as clock:
        announce(tenant, "balance.exhausted", {})
        receiver.status = 204
        clock.shift(timedelta(seconds=30))
        assert webhook_deliver_due() == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert list(
        WebhookAttempt.objects.order_by("number").values_list("status_code", flat=True)
    ) == [503, 204]


def test_an_unreachable_endpoint_is_logged_as_an_error(tenant: Tenant) -> None:
    webhook_endpoint_create(tenant=tenant, url="http://127.0.0.1:9/nothing-listens")
    announce(tenant, "balance.low", {})
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("ConnectionRefusedError")
    assert WebhookEndpoint.objects.count() == 1


def clock_now(clock: time_machine.Traveller) -> datetime:
    return datetime.fromtimestamp(time.time(), tz=UTC)


def h_time(headers: dict[str, str]) -> float:
    return float(headers["webhook-timestamp"])
