"""The names billing's Celery tasks are registered under.

Services enqueue a task by its name (`outbox_enqueue(task_names.BALANCE_EVALUATE, {...})`), so
they never import `billing.tasks`: the tasks module imports the services, never the reverse.
`tests/billing/test_task_names.py` checks that each name here is a registered task.
"""

SUBSCRIPTION_RENEW_DUE = "billing.subscription_renew_due"
CONTRACT_TRANCHES_DUE = "billing.contract_tranches_due"
CONTRACT_END_DUE = "billing.contract_end_due"
CONTRACT_INVOICES_DUE = "billing.contract_invoices_due"
CONTRACT_INVOICE_ISSUE = "billing.contract_invoice_issue"
BALANCE_EVALUATE = "billing.balance_evaluate"
CREDITS_EXPIRED_NOTIFY = "billing.credits_expired_notify"
AUTO_TOPUP_CHARGE = "billing.auto_topup_charge"
AUTO_TOPUP_RECONCILE = "billing.auto_topup_reconcile"
AUTO_TOPUP_SWEEP = "billing.auto_topup_sweep"
STRIPE_EVENT_PROCESS = "billing.stripe_event_process"
STRIPE_EVENTS_RETRY = "billing.stripe_events_retry"
TOPUPS_EXPIRE_DUE = "billing.topups_expire_due"
WEBHOOK_FANOUT = "billing.webhook_fanout"
WEBHOOK_ATTEMPT = "billing.webhook_attempt"
WEBHOOK_DELIVER_DUE = "billing.webhook_deliver_due"
ALERT_EMAIL_SEND = "billing.alert_email_send"
