"""Outgoing webhooks: one delivery per event and endpoint, signed (Standard Webhooks), sent by
Celery outside any transaction, retried with exponential backoff; every attempt is logged.

An attempt claims its delivery by moving `next_attempt_at` forward in one conditional UPDATE
(a lease), so two workers or two sweeps never send the same attempt twice.
"""

import http.client
import ipaddress
import json
import socket
import time
import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from billing import signing, task_names
from billing.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing.services.webhook_targets import (
    address_refused,
    private_targets_allowed,
    webhook_event_types_validate,
    webhook_url_validate,
)
from tenants.models import Tenant
from tenants.outbox import outbox_claim, task_by_name

# Wait before attempt n+1 after n failures: 30 s, 2 min, 8 min, 32 min, 2 h 8 min (x4 each);
# after the sixth failure the delivery is given up (status failed) and stays in the log.
RETRY_DELAYS = [timedelta(seconds=30 * 4**n) for n in range(5)]
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
LEASE = timedelta(seconds=60)
TIMEOUT_SECONDS = 10
# How much of an endpoint's answer an attempt keeps (characters of its body, decoded leniently),
# and reads at most (bytes): enough to see an error message, never a large page.
RESPONSE_KEPT = 500
RESPONSE_READ = 4096
# The type of the event "send a test event" sends to one endpoint (never fanned out, so it is
# not in the catalogue an endpoint subscribes to).
TEST_EVENT_TYPE = "webhook.test"


def webhook_endpoint_create(
    *, tenant: Tenant, url: str, event_types: list[str] | None = None
) -> WebhookEndpoint:
    """Refused with a 422 naming the field for a target we would never deliver to (see
    webhook_targets) or an event type that nothing publishes."""
    webhook_url_validate(url)
    types = webhook_event_types_validate(event_types or [])
    return WebhookEndpoint.objects.create(
        tenant=tenant, url=url, secret=signing.secret_generate(), event_types=types
    )


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """The endpoint stops receiving at once; its deliveries stay in the vendor's log, and the
    ones still waiting for a retry are given up (an attempt already sending finishes)."""
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            active=False, deleted_at=timezone.now()
        )
        WebhookDelivery.objects.filter(
            tenant_id=endpoint.tenant_id, endpoint=endpoint, status=WebhookDelivery.Status.PENDING
        ).update(status=WebhookDelivery.Status.FAILED)


def webhook_endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new signing secret for the endpoint, returned once (the caller shows it). Every
    attempt from now on, retries of older deliveries included, is signed with it: the old
    secret stops verifying at once, so the receiver is switched before the next event."""
    secret = signing.secret_generate()
    updated = WebhookEndpoint.objects.filter(
        tenant_id=endpoint.tenant_id, pk=endpoint.pk, deleted_at__isnull=True
    ).update(secret=secret)
    if not updated:
        raise WebhookEndpoint.DoesNotExist("The endpoint was deleted.")
    endpoint.secret = secret
    return endpoint


def webhook_endpoint_test_send(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` event to this endpoint alone, delivered (signed, retried, logged) like
    any other, whatever event types the endpoint subscribed to."""
    if endpoint.deleted_at is not None or not endpoint.active:
        raise WebhookEndpoint.DoesNotExist("The endpoint was deleted.")
    now = timezone.now()
    data = {"endpoint_id": endpoint.pk, "message": "A test event: your endpoint is reachable."}
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            tenant_id=endpoint.tenant_id,
            endpoint=endpoint,
            event_id=f"msg_{uuid.uuid4().hex}",
            event_type=TEST_EVENT_TYPE,
            payload={"type": TEST_EVENT_TYPE, "timestamp": now.isoformat(), "data": data},
            next_attempt_at=now,
            created_at=now,
        )
        # As in the fan-out: should the broker be down, the retry sweep sends it.
        transaction.on_commit(
            partial(task_by_name(task_names.WEBHOOK_ATTEMPT).delay, delivery_id=delivery.pk),
            robust=True,
        )
    return delivery


def webhook_fanout(
    *, tenant_id: int, type: str, data: dict[str, Any], outbox_id: int | None = None
) -> list[int]:
    """One delivery per active endpoint that wants `type`; sent after commit. With the outbox
    message that asked for it, the fan-out happens once however often the task runs."""
    now = timezone.now()
    event_id = f"msg_{uuid.uuid4().hex}"
    payload = {"type": type, "timestamp": now.isoformat(), "data": data}
    with transaction.atomic():
        # Claimed first, also when no endpoint wants the event: the message is then done.
        if outbox_id is not None and not outbox_claim(outbox_id):
            return []
        endpoints = [
            e
            for e in WebhookEndpoint.objects.filter(tenant_id=tenant_id, active=True)
            if not e.event_types or type in e.event_types
        ]
        if not endpoints:
            return []
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                tenant_id=tenant_id,
                endpoint=endpoint,
                event_id=event_id,
                event_type=type,
                payload=payload,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint in endpoints
        )
        ids = [d.pk for d in deliveries]
        # A broker that is down loses nothing: the deliveries are due now, and
        # webhook_deliver_due sends what these hand-offs could not.
        for pk in ids:
            transaction.on_commit(
                partial(task_by_name(task_names.WEBHOOK_ATTEMPT).delay, delivery_id=pk),
                robust=True,
            )
    return ids


class TargetRefused(Exception):
    """The endpoint's URL or the address its host resolves to is not one we deliver to."""


def _target_address(host: str, port: int) -> str:
    """The address to connect to, resolved once here, so the check and the connection see
    the same address (no second lookup a rebinding DNS server could answer differently)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    if not private_targets_allowed():
        for address in addresses:
            if address_refused(ipaddress.ip_address(address.split("%", 1)[0])):
                raise TargetRefused(f"Refused: {host} resolves to {address}, not a public address.")
    return addresses[0]


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, str]:
    """POST once: the status, the error (when there was no answer) and the start of the
    answer's body. A redirect is an answer like any other (never followed: it could point the
    signed request at an internal address)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    try:
        if not https and not (parts.scheme == "http" and private_targets_allowed()):
            raise TargetRefused(f"Refused: the {parts.scheme} scheme is not allowed.")
        port = parts.port or (443 if https else 80)
        address = _target_address(host, port)
    except TargetRefused as exc:
        return None, str(exc), ""
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:1000], ""
    connection_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
    connection = connection_class(host, port, timeout=TIMEOUT_SECONDS)

    def connect_to_vetted_address(
        _address: tuple[str, int], *args: Any, **kwargs: Any
    ) -> socket.socket:
        # TLS still verifies the certificate against `host` (the connection's own name).
        return socket.create_connection((address, port), *args, **kwargs)

    connection._create_connection = connect_to_vetted_address  # type: ignore[attr-defined]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(RESPONSE_READ).decode("utf-8", "replace")[:RESPONSE_KEPT]
        # PostgreSQL text cannot hold NUL.
        return response.status, "", answer.replace("\x00", "\ufffd")
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:1000], ""
    finally:
        connection.close()


def webhook_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Send one attempt if the delivery is due; None when another worker holds it or it is not
    due. Runs outside any transaction (the HTTP call must not hold locks)."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id,
        status=WebhookDelivery.Status.PENDING,
        next_attempt_at__lte=now,
        endpoint__deleted_at__isnull=True,  # a deleted endpoint is never sent to again
    ).update(next_attempt_at=now + LEASE)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = signing.headers(
        secret=delivery.endpoint.secret,
        msg_id=delivery.event_id,
        timestamp=int(now.timestamp()),
        body=body,
    )
    started = time.monotonic()
    status_code, error, answer = _post(delivery.endpoint.url, body, headers)
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record(delivery, status_code, error, duration_ms, answer)


def _record(
    delivery: WebhookDelivery, status_code: int | None, error: str, duration_ms: int, answer: str
) -> WebhookDelivery:
    now = timezone.now()
    with transaction.atomic():
        delivery.attempts += 1
        WebhookAttempt.objects.create(
            tenant_id=delivery.tenant_id,
            delivery=delivery,
            number=delivery.attempts,
            status_code=status_code,
            error=error,
            response=answer,
            duration_ms=duration_ms,
            at=now,
        )
        if status_code is not None and 200 <= status_code < 300:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.delivered_at = now
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
        else:
            delivery.next_attempt_at = now + RETRY_DELAYS[delivery.attempts - 1]
        # Only while still pending: deleting the endpoint during the attempt gave it up, and
        # the attempt is logged without bringing it back.
        WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.Status.PENDING
        ).update(
            attempts=delivery.attempts,
            status=delivery.status,
            delivered_at=delivery.delivered_at,
            next_attempt_at=delivery.next_attempt_at,
        )
    return delivery


def webhook_deliver_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """The retry sweep (Celery beat): queue an attempt for every pending delivery that is due."""
    now = now or timezone.now()
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).order_by("next_attempt_at")
    ids = list(due.values_list("pk", flat=True)[:limit])
    for pk in ids:
        task_by_name(task_names.WEBHOOK_ATTEMPT).delay(delivery_id=pk)
    return len(ids)
