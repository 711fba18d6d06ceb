"""STYLE: no `assert` as a guard (python -O strips them). Metering narrows explicitly."""

import ast
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from metering.services import UsageInput
from metering.usage.pricing import Priced
from metering.usage.write import _events_json

METERING = Path(__file__).resolve().parents[2] / "metering"


def test_metering_has_no_assert_statements() -> None:
    found = sorted(
        f"{path.relative_to(METERING.parent)}:{node.lineno}"
        for path in METERING.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assert)
    )
    assert found == []


def test_an_unpriced_event_is_never_built() -> None:
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    item = Priced(
        data=UsageInput(idempotency_key="evt-1", action="chat", quantity=Decimal(1)),
        request_hash="0" * 64,
        occurred_at=now,
    )

    with pytest.raises(RuntimeError) as refused:
        _events_json([item], step=None)

    assert str(refused.value) == "Usage event 'evt-1' reached recording unpriced."
