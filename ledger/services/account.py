"""Settings of a tenant's credit account: the overdraft limit, and the watch level another app
asks to hear about (CreditAccount.watch_level). Policies on the balance are the other apps'
(billing's alert thresholds, metering's soft cap)."""

from decimal import Decimal

from django.db import transaction

from ledger.exceptions import InvalidAmount
from ledger.locks import account_lock
from ledger.models import CreditAccount
from ledger.services._book import quantize_credits
from tenants.models import Tenant


def credit_account_update(
    *,
    tenant: Tenant,
    overdraft_limit: Decimal | None = None,
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
        if watch_level is not None and watch_level != account.watch_level:
            account.watch_level = quantize_credits(watch_level)
            fields.append("watch_level")
        if fields:
            account.save(update_fields=fields)
    return account
