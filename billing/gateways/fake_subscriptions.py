"""The fake gateway's subscriptions: Stripe Billing's lifecycle played locally.

A subscription invoices its first period at once, and each later period when it is asked about
after the period began (the renewal sweep asks: `subscription_get`). An invoice is paid unless
the fake was told that the subscription's payments fail (`payments_fail`, or a declining saved
card at creation); a failed one stays open and the subscription goes `past_due` until
`invoice_pay` (the customer paid it, or Stripe's retry succeeded). An upgrade is invoiced at once
and changes nothing while unpaid (Stripe's `pending_if_incomplete`); a downgrade, fewer seats and
a cancellation wait for the period end. State lives in the Django cache like the fake's payments
(tests clear it; several processes need a shared cache).
"""

import hashlib
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from billing.gateways.base import GatewayInvoice, GatewaySubscription, SubscriptionItems
from ledger.periods import add_months, period_bounds, period_index

DECLINING = "pm_fake_declined"


def _ref(prefix: str, seed: str) -> str:
    return f"{prefix}_{hashlib.sha256(seed.encode()).hexdigest()[:24]}"


def _fee(items: dict[str, Any]) -> int:
    return int(items["base_minor"]) + int(items["per_seat_minor"]) * int(items["seats"])


def _items(items: SubscriptionItems) -> dict[str, Any]:
    return {
        "plan": items.plan.slug,
        "base_minor": items.price.base_minor,
        "per_seat_minor": items.price.per_seat_minor,
        "seats": items.seats,
    }


class FakeSubscriptions:
    """Mixed into FakeGateway."""

    if TYPE_CHECKING:

        def outside_transaction(self) -> None: ...

    # The "server side".

    @staticmethod
    def _key(reference: str) -> str:
        return f"billing:fake-subscription:{reference}"

    @classmethod
    def _load(cls, reference: str) -> dict[str, Any]:
        state = cache.get(cls._key(reference))
        if state is None:
            from billing.exceptions import GatewayRefused

            raise GatewayRefused(detail=f"No such subscription: {reference}.")
        return dict(state)

    @classmethod
    def _store(cls, state: dict[str, Any]) -> None:
        cache.set(cls._key(state["reference"]), state, timeout=None)

    @classmethod
    def payments_fail(cls, *, reference: str, fail: bool = True) -> None:
        """From now on the subscription's invoices are declined (or paid again)."""
        state = cls._load(reference)
        state["fail"] = fail
        cls._store(state)

    @classmethod
    def invoice_pay(cls, *, reference: str, invoice: str) -> None:
        """The customer paid the open invoice `invoice` (or a retry succeeded)."""
        state = cls._load(reference)
        for entry in state["invoices"]:
            if entry["reference"] == invoice and entry["status"] == "open":
                entry["status"] = "paid"
                pending = entry.pop("pending_update", None)
                if pending is not None:
                    state["items"] = pending
        if state["status"] in ("past_due", "incomplete") and not any(
            e["status"] == "open" and e["reason"] != "subscription_update"
            for e in state["invoices"]
        ):
            state["status"] = "active"
        cls._store(state)

    @classmethod
    def _invoice(
        cls, state: dict[str, Any], *, reference: str, reason: str, amount: int, start: datetime
    ) -> dict[str, Any]:
        paid = not state["fail"]
        entry = {
            "reference": reference,
            "reason": reason,
            "status": "paid" if paid else "open",
            "failed": not paid,
            "amount_minor": amount,
            "period_start": start.isoformat(),
        }
        state["invoices"].append(entry)
        return entry

    @classmethod
    def _advance(cls, state: dict[str, Any], now: datetime) -> None:
        """Play the periods that began since the state was last looked at."""
        anchor = datetime.fromisoformat(state["anchor"])
        while state["status"] != "canceled" and datetime.fromisoformat(state["period_end"]) <= now:
            start = datetime.fromisoformat(state["period_end"])
            if state["cancel_at_period_end"]:
                state["status"] = "canceled"
                break
            if state["next"] is not None:
                state["items"], state["next"], state["schedule"] = state["next"], None, ""
            index = period_index(anchor, start)
            state["period_start"] = start.isoformat()
            state["period_end"] = add_months(anchor, index + 1).isoformat()
            entry = cls._invoice(
                state,
                reference=_ref("fin", f"{state['reference']}:{index}"),
                reason="subscription_cycle",
                amount=_fee(state["items"]),
                start=start,
            )
            if entry["failed"]:
                state["status"] = "past_due"

    @staticmethod
    def _view(state: dict[str, Any]) -> GatewaySubscription:
        invoices = tuple(
            GatewayInvoice(
                reference=e["reference"],
                subscription_reference=state["reference"],
                status=e["status"],
                reason=e["reason"],
                period_start=datetime.fromisoformat(e["period_start"]),
                amount_minor=e["amount_minor"],
                currency=state["currency"],
                failed=e["failed"],
                # The fake has no invoice server: the portal renders its invoices itself.
                hosted_url=reverse("billing:plan-invoice", kwargs={"reference": e["reference"]}),
            )
            for e in reversed(state["invoices"][-10:])
        )
        return GatewaySubscription(
            reference=state["reference"],
            status=state["status"],
            period_start=datetime.fromisoformat(state["period_start"]),
            period_end=datetime.fromisoformat(state["period_end"]),
            items={"base": f"{state['reference']}_base", "seat": f"{state['reference']}_seat"},
            invoices=invoices,
            schedule=state["schedule"],
        )

    # The gateway's calls.

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
        reference = _ref("fsub", idempotency_key)
        existing = cache.get(self._key(reference))
        if existing is not None:  # a retried call: the same subscription, as at Stripe
            return self._view(existing)
        now = timezone.now()
        start, end = period_bounds(now, now)
        state: dict[str, Any] = {
            "reference": reference,
            "currency": items.price.currency,
            "anchor": now.isoformat(),
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "items": _items(items),
            "next": None,
            "schedule": "",
            "cancel_at_period_end": False,
            "fail": payment_method_id == DECLINING,
            "invoices": [],
            "status": "active",
        }
        entry = self._invoice(
            state,
            reference=_ref("fin", f"{reference}:0"),
            reason="subscription_create",
            amount=_fee(state["items"]),
            start=start,
        )
        if entry["failed"]:
            state["status"] = "incomplete"
        self._store(state)
        return self._view(state)

    def subscription_change_now(
        self,
        *,
        reference: str,
        items: SubscriptionItems,
        idempotency_key: str,
    ) -> GatewayInvoice:
        self.outside_transaction()
        state = self._load(reference)
        self._advance(state, timezone.now())
        invoice_ref = _ref("fin", idempotency_key)
        for entry in state["invoices"]:
            if entry["reference"] == invoice_ref:  # a retried call
                return next(i for i in self._view(state).invoices if i.reference == invoice_ref)
        start = datetime.fromisoformat(state["period_start"])
        end = datetime.fromisoformat(state["period_end"])
        left = Decimal((end - timezone.now()).total_seconds()) / Decimal(
            (end - start).total_seconds()
        )
        new = _items(items)
        amount = int(
            (Decimal(_fee(new) - _fee(state["items"])) * left).quantize(
                Decimal(1), rounding=ROUND_HALF_UP
            )
        )
        entry = self._invoice(
            state,
            reference=invoice_ref,
            reason="subscription_update",
            amount=max(amount, 0),
            start=start,
        )
        if entry["failed"]:
            entry["pending_update"] = new
        else:
            state["items"] = new
        # A change made now replaces one that waited for the period end (as Stripe's
        # subscription update releases nothing by itself, the service drops it first).
        self._store(state)
        return next(i for i in self._view(state).invoices if i.reference == invoice_ref)

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
        state = self._load(reference)
        state["next"] = _items(items) if items is not None else None
        state["schedule"] = _ref("fsched", reference) if items is not None else ""
        self._store(state)
        return str(state["schedule"])

    def subscription_cancel_at_period_end(
        self, *, reference: str, schedule: str, idempotency_key: str
    ) -> None:
        self.outside_transaction()
        state = self._load(reference)
        state["cancel_at_period_end"], state["next"], state["schedule"] = True, None, ""
        self._store(state)

    def subscription_get(self, *, reference: str) -> GatewaySubscription:
        self.outside_transaction()
        state = self._load(reference)
        self._advance(state, timezone.now())
        self._store(state)
        return self._view(state)
