"""`tenant_create --plan` and `seed_demo` subscribe through the payment gateway, as the API's
subscribe does: a linked subscription whose first invoice the fake gateway pays, and whose
credits come with that payment, not an unlinked row that grants by itself."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Plan, PlanPrice, Subscription, SubscriptionInvoice
from ledger.models import CreditBucket
from ledger.selectors import balance_get
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


def linked(tenant: Tenant) -> list[tuple[str, str, bool, str]]:
    return [
        (sub.plan.slug, sub.status, bool(sub.gateway_reference), sub.gateway)
        for sub in Subscription.objects.filter(tenant=tenant).select_related("plan")
    ]


def paid_invoices(tenant: Tenant) -> list[tuple[str, int, int]]:
    return list(
        SubscriptionInvoice.objects.filter(tenant=tenant).values_list(
            "status", "period_index", "amount_minor"
        )
    )


def test_tenant_create_subscribes_through_the_gateway(plans: dict[str, Plan]) -> None:
    ratecard_seed_example()
    PlanPrice.objects.create(plan=plans["pro"], currency="USD", base_minor=7_900)
    out = StringIO()

    call_command("tenant_create", "--name", "Initech", "--plan", "pro", stdout=out)

    assert out.getvalue().splitlines()[:2] == ["tenant: initech", "plan: pro (750 credits)"]
    tenant = Tenant.objects.get(slug="initech")
    assert out.getvalue().splitlines()[2].startswith("api key: cl_")
    assert linked(tenant) == [("pro", "active", True, "fake")]
    assert paid_invoices(tenant) == [("paid", 0, 7_900)]
    sub = Subscription.objects.get(tenant=tenant)
    bucket = CreditBucket.objects.get(tenant=tenant)
    assert (bucket.external_reference, bucket.granted, bucket.price_minor) == (
        f"sub:{sub.pk}:0",
        Decimal("750.0000"),
        7_900,
    )
    assert balance_get(tenant=tenant).available == Decimal("750")


def test_a_plan_without_a_price_in_the_currency_makes_no_tenant(plans: dict[str, Plan]) -> None:
    with pytest.raises(CommandError) as refused:
        call_command("tenant_create", "--name", "Initech", "--plan", "pro", stdout=StringIO())

    assert str(refused.value) == "currency: The plan pro has no price in USD."
    assert not Tenant.objects.filter(slug="initech").exists()


def test_seed_demo_subscribes_the_demo_tenant_once(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    out = StringIO()
    call_command("seed_demo", stdout=out)

    assert list(Plan.objects.values_list("slug", "included_credits")) == [
        ("starter", Decimal("250.0000")),
        ("pro", Decimal("750.0000")),
        ("enterprise", Decimal("5000.0000")),
    ]
    assert "  buy       http://127.0.0.1:8000/buy/" in out.getvalue()
    demo = Tenant.objects.get(slug="demo")
    assert linked(demo) == [("pro", "active", True, "fake")]
    assert paid_invoices(demo) == [("paid", 0, 7_900)]
    assert balance_get(tenant=demo).available == Decimal("750")
