"""Stripe events go to the handler registered for their type; unknown types are stored and
acknowledged; services never import the tasks module (they enqueue tasks by name)."""

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import current_app

from billing import task_names
from billing.models import StripeEvent
from billing.services.stripe_events import (
    _HANDLERS,
    stripe_handled_types,
    stripe_handler,
)
from billing.services.stripe_payloads import ObjectReader
from tests.billing.test_stripe_webhook import deliver

ROOT = Path(__file__).resolve().parents[2]


def signed(event_id: str, event_type: str, obj: dict[str, object]) -> tuple[int, dict]:
    return deliver(
        json.dumps({"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}})
    )


@pytest.fixture
def test_type() -> Iterator[str]:
    yield "test.thing_happened"
    _HANDLERS.pop("test.thing_happened", None)


@pytest.mark.django_db(transaction=True)
def test_a_handler_registered_from_another_module_runs_once_per_event(test_type: str) -> None:
    seen: list[str] = []

    @stripe_handler(test_type)
    def on_thing(obj: ObjectReader, event: StripeEvent) -> str:
        seen.append(f"{event.event_id}:{obj.text('name')}")
        return ""

    first = signed("evt_reg_1", test_type, {"object": "thing", "name": "a"})
    again = signed("evt_reg_1", test_type, {"object": "thing", "name": "a"})

    assert first == (200, {"received": True, "event": "evt_reg_1", "duplicate": False})
    assert again == (200, {"received": True, "event": "evt_reg_1", "duplicate": True})
    assert seen == ["evt_reg_1:a"]
    stored = StripeEvent.objects.get(event_id="evt_reg_1")
    assert (stored.type, stored.error, stored.processed_at is not None) == (test_type, "", True)


def test_a_type_has_one_handler(test_type: str) -> None:
    @stripe_handler(test_type)
    def first(obj: ObjectReader, event: StripeEvent) -> str:
        return ""

    with pytest.raises(ValueError, match="already has a handler") as refused:

        @stripe_handler(test_type)
        def second(obj: ObjectReader, event: StripeEvent) -> str:
            return ""

    assert str(refused.value) == (
        f"Stripe event type {test_type} already has a handler: "
        "tests.billing.test_stripe_registry."
        "test_a_type_has_one_handler.<locals>.first."
    )


@pytest.mark.django_db(transaction=True)
def test_an_unknown_type_is_stored_and_acknowledged() -> None:
    answer = signed("evt_unknown", "customer.created", {"object": "customer", "id": "cus_1"})

    assert answer == (200, {"received": True, "event": "evt_unknown", "duplicate": False})
    stored = StripeEvent.objects.get(event_id="evt_unknown")
    assert stored.payload["data"]["object"] == {"object": "customer", "id": "cus_1"}
    assert stored.processed_at is not None
    assert stored.error == "No handler for event type customer.created; stored and acknowledged."


def test_the_top_up_and_card_types_are_registered() -> None:
    assert set(stripe_handled_types()) >= {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "setup_intent.succeeded",
    }


def test_billing_services_never_import_the_tasks_module() -> None:
    offenders = []
    paths = [*(ROOT / "billing" / "services").rglob("*.py"), ROOT / "billing" / "listeners.py"]
    for path in sorted(paths):
        for node in ast.walk(ast.parse(path.read_text())):
            modules: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            if "billing.tasks" in modules:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_every_task_name_is_a_registered_task() -> None:
    import billing.tasks  # noqa: F401

    names = [value for key, value in vars(task_names).items() if key.isupper()]
    assert len(names) == 17
    assert [name for name in names if name not in current_app.tasks] == []


def test_the_readme_tells_the_vendor_every_event_type_to_enable() -> None:
    readme = (ROOT / "README.md").read_text()

    assert [t for t in stripe_handled_types() if f"`{t}`" not in readme] == []
