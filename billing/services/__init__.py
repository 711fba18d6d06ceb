"""Every write of billing. Row locks come from billing.locks, whose docstring states the lock
order (the ledger account row first, then the policy, then the top-up). Gateway calls and
webhook deliveries happen outside any transaction, after the intent is committed."""

# Imported for its side effect: it registers the top-up and card handlers of Stripe events.
import billing.services.stripe_handlers  # noqa: F401
from billing.services.alerts import alert_settings_update, balance_evaluate, credits_expired_notify
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
from billing.services.payment_methods import (
    payment_method_remove,
    payment_method_save,
    payment_method_setup_start,
)
from billing.services.refunds import topup_refund, topup_take_back
from billing.services.stripe_events import stripe_event_process, stripe_event_receive
from billing.services.subscriptions import subscription_renew_due, subscription_start
from billing.services.topups import (
    Purchase,
    billing_customer_save,
    fake_checkout_confirm,
    topup_cancel,
    topup_checkout_start,
    topup_complete,
    topup_create,
    topup_expire,
    topup_fail,
    topup_purchase,
    topup_receipt_record,
    topups_expire_due,
)
from billing.services.webhooks import (
    webhook_attempt,
    webhook_deliver_due,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_fanout,
)

__all__ = [
    "Purchase",
    "alert_email_send",
    "alert_settings_update",
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
    "payment_method_remove",
    "payment_method_save",
    "payment_method_setup_start",
    "stripe_event_process",
    "stripe_event_receive",
    "subscription_renew_due",
    "subscription_start",
    "topup_cancel",
    "topup_checkout_start",
    "topup_complete",
    "topup_create",
    "topup_expire",
    "topup_fail",
    "topup_purchase",
    "topup_receipt_record",
    "topup_refund",
    "topup_take_back",
    "topups_expire_due",
    "webhook_attempt",
    "webhook_deliver_due",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_fanout",
]
