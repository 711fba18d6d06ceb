"""Billing fixtures: the catalogue, a tenant with a billing contact, helpers that run threads."""

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.test import APIClient

from billing.models import CreditPack, Plan
from ledger.models import CreditBucket
from ledger.services import ledger_grant
from ratecards.selectors import price_cache_clear
from tenants.models import Membership, Tenant
from tenants.services import membership_add
from tests.billing.factories import CreditPackFactory, PlanFactory
from tests.billing.stripe_canned import canned_stripe, stripe_offline  # noqa: F401 (fixtures)

WEBHOOK_SECRET = "whsec_test_secret_for_billing_tests"


@pytest.fixture(autouse=True)
def _billing_settings(settings: Any) -> Iterator[None]:
    settings.BILLING_GATEWAY = "fake"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_SECRET_KEY = "sk_test_canned"
    # The receivers these tests run listen on 127.0.0.1 over http.
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    price_cache_clear()
    yield
    price_cache_clear()


@pytest.fixture
def api_client(tenant: Tenant, make_client: Callable[..., APIClient]) -> APIClient:
    """Billing's routes move money: their tests call them with a key that has `billing`."""
    return make_client(tenant, scopes=("read", "write", "billing"))


@pytest.fixture
def plans(db: None) -> dict[str, Plan]:
    made: dict[str, Plan] = {
        "starter": PlanFactory.create(
            slug="starter", name="Starter", price_minor=2_900, included_credits=Decimal("250")
        ),
        "pro": PlanFactory.create(
            slug="pro", name="Pro", price_minor=7_900, included_credits=Decimal("750")
        ),
        "enterprise": PlanFactory.create(
            slug="enterprise",
            name="Enterprise",
            price_minor=49_900,
            included_credits=Decimal("5000"),
        ),
    }
    return made


@pytest.fixture
def pack(db: None) -> CreditPack:
    made: CreditPack = CreditPackFactory.create(
        slug="pack-500", name="500 credits", credits=Decimal("500"), price_minor=6_500
    )
    return made


@pytest.fixture
def owner(tenant: Tenant) -> User:
    user = User.objects.create_user("owner", email="owner@acme.test", password="pw-123456")
    membership_add(tenant=tenant, user=user, role=Membership.Role.OWNER)
    return user


def grant(tenant: Tenant, credits: str | int, reference: str, price_minor: int = 0) -> None:
    ledger_grant(
        tenant=tenant,
        credits=Decimal(credits),
        policy=CreditBucket.Policy.PERMANENT,
        source=CreditBucket.Source.PROMOTION,
        external_reference=reference,
        price_minor=price_minor,
    )


def run_concurrently(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together; results (or exceptions) in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # collected for the assertion, not swallowed
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results
