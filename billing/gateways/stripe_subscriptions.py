"""Stripe Billing for subscriptions, mixed into StripeGateway.

A plan's fee is its base Price (quantity 1) plus, where it has seats, its per-seat Price
(quantity = seats), in the subscription's currency (PlanPrice). Upgrades and added seats are
invoiced at once (`proration_behavior=always_invoice`, `payment_behavior=pending_if_incomplete`:
unpaid, Stripe keeps the subscription as it was); downgrades and fewer seats wait for the period
end in a Subscription Schedule; a cancellation ends the subscription at its period end.

`stripe_invoice_read` / `stripe_subscription_read` read Stripe's JSON (an API answer or a webhook's
`data.object`) into the gateway's dataclasses; a field of the wrong shape is a ValueError.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import stripe

from billing.exceptions import GatewayError, GatewayRefused
from billing.gateways.base import GatewayInvoice, GatewaySubscription, SubscriptionItems


def _get(obj: Mapping[str, Any], key: str, kind: type, *, required: bool = True) -> Any:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ValueError(f"{key} is {type(value).__name__}, not {kind.__name__}.")
    return value


def _when(obj: Mapping[str, Any], key: str) -> datetime:
    return datetime.fromtimestamp(_get(obj, key, int), tz=UTC)


def _id(value: Any) -> str:
    # An expandable field: an id, or the object it names.
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    raise ValueError("an expandable field is neither an id nor an object.")


def _invoice_subscription(invoice: Mapping[str, Any]) -> str:
    parent = invoice.get("parent")
    if isinstance(parent, Mapping):
        details = parent.get("subscription_details")
        if isinstance(details, Mapping) and details.get("subscription") is not None:
            return _id(details["subscription"])
    if invoice.get("subscription") is not None:  # API versions before 2025-03-31
        return _id(invoice["subscription"])
    return ""


def _invoice_period_start(invoice: Mapping[str, Any]) -> datetime:
    """The start of the subscription period the invoice pays for: its first line's period
    (the invoice's own period_start is the period before, for a renewal)."""
    lines = invoice.get("lines")
    data = lines.get("data") if isinstance(lines, Mapping) else None
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        period = data[0].get("period")
        if isinstance(period, Mapping):
            return _when(period, "start")
    return _when(invoice, "period_end")


def stripe_invoice_read(invoice: Mapping[str, Any]) -> GatewayInvoice:
    status = _get(invoice, "status", str)
    paid = status == "paid"
    return GatewayInvoice(
        reference=_get(invoice, "id", str),
        subscription_reference=_invoice_subscription(invoice),
        status=status,
        reason=_get(invoice, "billing_reason", str, required=False) or "",
        period_start=_invoice_period_start(invoice),
        amount_minor=_get(invoice, "amount_paid" if paid else "amount_due", int),
        currency=_get(invoice, "currency", str).upper(),
        failed=status == "open" and bool(invoice.get("attempted")),
        hosted_url=_get(invoice, "hosted_invoice_url", str, required=False) or "",
    )


def _items_read(subscription: Mapping[str, Any]) -> dict[str, str]:
    """The base and seat items' ids: by the label we put in each item's metadata, else (a
    subscription made elsewhere, then linked) the first item is the base and another the seats."""
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    found: dict[str, str] = {}
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, Mapping):
            continue
        metadata = item.get("metadata")
        label = metadata.get(ITEM_LABEL) if isinstance(metadata, Mapping) else None
        if label not in ("base", "seat"):
            label = "seat" if "base" in found else "base"
        found[str(label)] = _get(item, "id", str)
    return found


def _period_read(subscription: Mapping[str, Any]) -> tuple[datetime, datetime]:
    # Since 2025-03-31 the period lives on each item; before, on the subscription.
    if "current_period_start" in subscription:
        return _when(subscription, "current_period_start"), _when(
            subscription, "current_period_end"
        )
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], Mapping):
        raise ValueError("the subscription has no items to read its period from.")
    return _when(data[0], "current_period_start"), _when(data[0], "current_period_end")


def stripe_subscription_read(
    subscription: Mapping[str, Any], *, invoices: tuple[GatewayInvoice, ...] = ()
) -> GatewaySubscription:
    start, end = _period_read(subscription)
    latest = subscription.get("latest_invoice")
    if not invoices and isinstance(latest, Mapping):
        invoices = (stripe_invoice_read(latest),)
    schedule = subscription.get("schedule")
    return GatewaySubscription(
        reference=_get(subscription, "id", str),
        status=_get(subscription, "status", str),
        period_start=start,
        period_end=end,
        items=_items_read(subscription),
        invoices=invoices,
        schedule=_id(schedule) if schedule else "",
    )


# Each subscription item says which it is in its metadata, so later changes find it.
ITEM_LABEL = "creditline_item"


def _line_items(items: SubscriptionItems) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = [
        {
            "price": items.price.stripe_base_price_id,
            "quantity": 1,
            "metadata": {ITEM_LABEL: "base"},
        }
    ]
    if items.price.stripe_seat_price_id:
        lines.append(
            {
                "price": items.price.stripe_seat_price_id,
                "quantity": items.seats,
                "metadata": {ITEM_LABEL: "seat"},
            }
        )
    return lines


# Stripe's answers that made nothing (4xx); a connection error or a 5xx may hide a made object.
REFUSALS = (
    stripe.InvalidRequestError,
    stripe.AuthenticationError,
    stripe.PermissionError,
    stripe.CardError,
)


def _gateway_error(exc: stripe.StripeError) -> GatewayError:
    kind = GatewayRefused if isinstance(exc, REFUSALS) else GatewayError
    return kind(detail=str(exc.user_message or exc))


class StripeSubscriptions:
    """Mixed into StripeGateway."""

    if TYPE_CHECKING:

        @property
        def client(self) -> stripe.StripeClient: ...

        def outside_transaction(self) -> None: ...

    def subscription_create(
        self,
        *,
        tenant_id: int,
        subscription_id: int,
        customer_id: str,
        payment_method_id: str,
        items: SubscriptionItems,
        idempotency_key: str,
    ) -> GatewaySubscription:
        self.outside_transaction()
        params: dict[str, Any] = {
            "customer": customer_id,
            "items": _line_items(items),
            "collection_method": "charge_automatically",
            # Unpaid, the subscription is `incomplete` and its invoice stays payable.
            "payment_behavior": "allow_incomplete",
            "metadata": {"tenant_id": str(tenant_id), "subscription_id": str(subscription_id)},
            "expand": ["latest_invoice"],
        }
        if payment_method_id:
            params["default_payment_method"] = payment_method_id
        try:
            created = self.client.v1.subscriptions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc
        return stripe_subscription_read(created.to_dict())

    def subscription_change_now(
        self,
        *,
        reference: str,
        items: SubscriptionItems,
        idempotency_key: str,
    ) -> GatewayInvoice:
        self.outside_transaction()
        try:
            current = _items_read(self.client.v1.subscriptions.retrieve(reference).to_dict())
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc
        lines: list[dict[str, Any]] = [
            {"id": current["base"], "price": items.price.stripe_base_price_id}
        ]
        seat_price = items.price.stripe_seat_price_id
        if seat_price and "seat" in current:
            lines.append({"id": current["seat"], "price": seat_price, "quantity": items.seats})
        elif seat_price:
            lines.append(
                {"price": seat_price, "quantity": items.seats, "metadata": {ITEM_LABEL: "seat"}}
            )
        elif "seat" in current:
            lines.append({"id": current["seat"], "deleted": True})
        params: dict[str, Any] = {
            "items": lines,
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
            "expand": ["latest_invoice"],
        }
        try:
            updated = self.client.v1.subscriptions.update(
                reference,
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc
        latest = updated.to_dict().get("latest_invoice")
        if not isinstance(latest, Mapping):
            raise GatewayError(detail="Stripe answered the change without its invoice.")
        return stripe_invoice_read(latest)

    def subscription_change_at_period_end(
        self,
        *,
        reference: str,
        schedule: str,
        current: SubscriptionItems,
        items: SubscriptionItems | None,
        idempotency_key: str,
    ) -> str:
        self.outside_transaction()
        schedules = self.client.v1.subscription_schedules
        try:
            if items is None:
                if schedule:
                    schedules.release(schedule, options={"idempotency_key": idempotency_key})
                return ""
            if schedule:
                found = schedules.retrieve(schedule)
            else:
                found = schedules.create(
                    params={"from_subscription": reference},
                    options={"idempotency_key": f"{idempotency_key}:schedule"},
                )
            phase = found.to_dict()["phases"][0]
            params: dict[str, Any] = {
                "end_behavior": "release",
                "phases": [
                    {
                        "items": _line_items(current),
                        "start_date": phase["start_date"],
                        "end_date": phase["end_date"],
                    },
                    {
                        "items": _line_items(items),
                        "proration_behavior": "none",
                        "duration": {"interval": "month", "interval_count": 1},
                    },
                ],
            }
            schedules.update(
                found.id,
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc
        return found.id

    def subscription_cancel_at_period_end(
        self, *, reference: str, schedule: str, idempotency_key: str
    ) -> None:
        self.outside_transaction()
        try:
            if schedule:
                # A change waiting for the period end is moot once the subscription ends there.
                self.client.v1.subscription_schedules.release(
                    schedule, options={"idempotency_key": f"{idempotency_key}:release"}
                )
            self.client.v1.subscriptions.update(
                reference,
                params={"cancel_at_period_end": True},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc

    def subscription_get(self, *, reference: str) -> GatewaySubscription:
        self.outside_transaction()
        try:
            found = self.client.v1.subscriptions.retrieve(reference)
            invoices = self.client.v1.invoices.list(params={"subscription": reference, "limit": 10})
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc
        read = tuple(stripe_invoice_read(i.to_dict()) for i in invoices.data)
        return stripe_subscription_read(found.to_dict(), invoices=read)
