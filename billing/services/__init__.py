"""Every write of billing. Row locks come from billing.locks, whose docstring states the lock
order (the ledger account row first, then the policy, then the top-up). Gateway calls and
webhook deliveries happen outside any transaction, after the intent is committed."""

from billing.services.alerts import balance_evaluate, credits_expired_notify
from billing.services.autotopup import (
    auto_topup_charge,
    auto_topup_policy_update,
    auto_topup_reconcile,
    auto_topup_start,
    auto_topup_sweep,
)
from billing.services.contracts import (
    contract_activate,
    contract_end_due,
    contract_start_due,
    contract_tranches_due,
)
from billing.services.notify import alert_email_send, notify
from billing.services.stripe_events import stripe_event_process, stripe_event_receive
from billing.services.subscriptions import subscription_renew_due, subscription_start
from billing.services.topups import (
    billing_customer_save,
    fake_checkout_confirm,
    topup_checkout_start,
    topup_complete,
    topup_create,
    topup_fail,
)
from billing.services.webhooks import (
    webhook_attempt,
    webhook_deliver_due,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_fanout,
)

__all__ = [
    "alert_email_send",
    "auto_topup_charge",
    "auto_topup_policy_update",
    "auto_topup_reconcile",
    "auto_topup_start",
    "auto_topup_sweep",
    "balance_evaluate",
    "billing_customer_save",
    "contract_activate",
    "contract_end_due",
    "contract_start_due",
    "contract_tranches_due",
    "credits_expired_notify",
    "fake_checkout_confirm",
    "notify",
    "stripe_event_process",
    "stripe_event_receive",
    "subscription_renew_due",
    "subscription_start",
    "topup_checkout_start",
    "topup_complete",
    "topup_create",
    "topup_fail",
    "webhook_attempt",
    "webhook_deliver_due",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_fanout",
]
