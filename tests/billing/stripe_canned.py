"""A Stripe HTTP client for tests: canned answers by method and path, every request recorded.
The adapter's own code (billing/gateways/stripe_gateway.py) runs against it: every adapter
gateway_get() hands out in a billing test uses it (tests/billing/conftest.py)."""

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from billing.gateways.stripe_gateway import StripeGateway


class RoutedStripe(stripe.HTTPClient):
    name = "canned"

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
        self.sent: list[dict[str, Any]] = []

    def answer(self, method: str, path: str, status: int, body: dict[str, Any]) -> None:
        """Queue an answer; the last one queued for a route repeats."""
        self.routes.setdefault((method.upper(), path), []).append((status, body))

    def request(
        self, method: str, url: str, headers: Any, post_data: Any = None, *, _usage: Any = None
    ) -> tuple[str, int, dict[str, str]]:
        path = urlsplit(url).path
        self.sent.append(
            {
                "method": method.upper(),
                "path": path,
                "query": parse_qs(urlsplit(url).query),
                "idempotency_key": dict(headers or {}).get("Idempotency-Key"),
                "form": parse_qs(post_data or ""),
            }
        )
        queued = self.routes.get((method.upper(), path))
        if not queued:
            body = {"error": {"type": "invalid_request_error", "message": f"No route {path}"}}
            return json.dumps(body), 404, {"request-id": "req_canned"}
        status, answer = queued.pop(0) if len(queued) > 1 else queued[0]
        return json.dumps(answer), status, {"request-id": "req_canned"}

    def paths(self) -> list[tuple[str, str]]:
        return [(s["method"], s["path"]) for s in self.sent]


@pytest.fixture(autouse=True)
def stripe_offline(monkeypatch: pytest.MonkeyPatch) -> RoutedStripe:
    """Every billing test: a Stripe adapter made without an HTTP client gets this one, which
    answers 404 to what no test queued, so no test ever reaches the network."""
    http = RoutedStripe()
    original = StripeGateway.__init__

    def with_canned_http(self: StripeGateway, http_client: Any = None) -> None:
        original(self, http_client or http)

    monkeypatch.setattr(StripeGateway, "__init__", with_canned_http)
    return http


@pytest.fixture
def canned_stripe(settings: Any, stripe_offline: RoutedStripe) -> RoutedStripe:
    """Stripe as the gateway, answering what the test queues on it."""
    settings.BILLING_GATEWAY = "stripe"
    return stripe_offline
