"""Settings of a tenant's credit account: overdraft limit, alert thresholds, soft cap, and the
watch level another app asks to hear about (CreditAccount.watch_level)."""

from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction

from ledger.exceptions import InvalidAmount
from ledger.locks import account_lock
from ledger.models import ZERO, CreditAccount
from ledger.services._book import quantize_credits
from tenants.models import Tenant


def credit_account_update(
    *,
    tenant: Tenant,
    overdraft_limit: Decimal | None = None,
    alert_thresholds: Iterable[int] | None = None,
    soft_cap: Decimal | None = None,
    clear_soft_cap: bool = False,
    watch_level: Decimal | None = None,
) -> CreditAccount:
    with transaction.atomic():
        account = account_lock(tenant_id=tenant.pk)
        fields = []
        if overdraft_limit is not None:
            if overdraft_limit < 0:
                raise InvalidAmount("An overdraft limit cannot be negative.")
            account.overdraft_limit = quantize_credits(overdraft_limit)
            fields.append("overdraft_limit")
        if alert_thresholds is not None:
            thresholds = sorted({int(t) for t in alert_thresholds}, reverse=True)
            if any(t <= 0 or t >= 100 for t in thresholds):
                raise InvalidAmount("Alert thresholds are percentages between 1 and 99.")
            account.alert_thresholds = thresholds
            fields.append("alert_thresholds")
        if soft_cap is not None or clear_soft_cap:
            account.soft_cap = None if clear_soft_cap else quantize_credits(soft_cap or ZERO)
            fields.append("soft_cap")
        if watch_level is not None and watch_level != account.watch_level:
            account.watch_level = quantize_credits(watch_level)
            fields.append("watch_level")
        if fields:
            account.save(update_fields=fields)
    return account
