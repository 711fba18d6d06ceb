"""Each rule metering relies on lives in one place: prices and their rounding in ratecards, the
credit quantum in ledger.services.quantize_credits, the balance and the soft cap in ledger's
selectors. Metering keeps only its own rule: an outcome-priced action that failed is free."""

import ast
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from metering.services import UsageInput, usage_event_record, usage_event_record_batch
from ratecards.models import RateCard
from ratecards.selectors import price, price_cache_clear
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import fund

METERING = Path(__file__).resolve().parents[2] / "metering"


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(METERING.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path, ast.parse(path.read_text(), filename=str(path))


def test_metering_quantizes_nothing_but_money() -> None:
    # Credits are rounded by ratecards (prices) and ledger.services.quantize_credits (the rest).
    # Metering's own quanta: money, and GPU seconds' millisecond (a measure, not credits).
    offenders = [
        f"{path.relative_to(METERING.parent)}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "quantize"
        and not (
            node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in {"MONEY_QUANTUM", "GPU_SECONDS_QUANTUM"}
        )
    ]
    assert offenders == []


def test_metering_reads_no_credit_bucket_itself() -> None:
    # The balance and the soft cap come from ledger.selectors (available_get, soft_cap_get).
    offenders = [
        f"{path.relative_to(METERING.parent)}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module == "ledger.models"
        and any(alias.name == "CreditBucket" for alias in node.names)
    ]
    assert offenders == []


@pytest.fixture
def card(db: None) -> Iterator[RateCard]:
    price_cache_clear()
    yield ratecard_seed_example()
    price_cache_clear()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "model_class", "quantity", "outcome", "charged", "credits"),
    [
        ("chat", "turbo", "2.5", "success", True, "15.0000"),  # 1 x 6 x 2.5
        ("doc_search", "", "0.3333", "failure", True, "0.9999"),  # charged always
        ("resolution", "", "1", "success", True, "50.0000"),
        ("resolution", "", "1", "failure", False, "0.0000"),  # outcome-priced and failed: free
    ],
)
def test_an_event_costs_what_ratecards_prices_it_at(
    tenant: Tenant,
    card: RateCard,
    action: str,
    model_class: str,
    quantity: str,
    outcome: str,
    charged: bool,
    credits: str,
) -> None:
    fund(tenant, 1000)
    with time_machine.travel(timezone.now() + timedelta(days=1), tick=False):
        quote = price(
            tenant=tenant,
            action=action,
            model_class=model_class or None,
            quantity=Decimal(quantity),
            at=timezone.now(),
        )
        expected = quote.credits if charged else Decimal("0")
        one, two = (
            UsageInput(
                idempotency_key=key,
                action=action,
                model_class=model_class,
                quantity=Decimal(quantity),
                outcome=outcome,
            )
            for key in ("one", "two")
        )
        single = usage_event_record(tenant=tenant, data=one)
        [batch] = usage_event_record_batch(tenant=tenant, items=[two])

    assert expected == Decimal(credits)
    assert single.event.credits == expected
    assert batch.event is not None
    assert batch.event.credits == expected
