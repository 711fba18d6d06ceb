"""Ledger factories. Buckets are made through `ledger_grant`, the only writer of ledger rows,
so a factory-made bucket has its grant entry and the balance stays the sum of entries."""

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import factory

from ledger.models import CreditBucket
from ledger.services import ledger_grant
from tenants.models import Tenant
from tenants.services import tenant_create


class TenantFactory(factory.Factory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")

    @classmethod
    def _create(cls, model_class: type[Tenant], *args: Any, **kwargs: Any) -> Tenant:
        return tenant_create(name=kwargs["name"], slug=kwargs["slug"])


class BucketFactory(factory.Factory):
    """`BucketFactory(tenant=t, credits=100)`: a permanent, free promotion bucket by default."""

    class Meta:
        model = CreditBucket

    tenant = factory.SubFactory(TenantFactory)
    credits = Decimal("100")
    policy = CreditBucket.Policy.PERMANENT
    source = CreditBucket.Source.PROMOTION
    external_reference = factory.Sequence(lambda n: f"grant-{n}")
    price_minor = 0
    granted_at: datetime | None = None
    expires_at: datetime | None = None

    @classmethod
    def _create(cls, model_class: type[CreditBucket], *args: Any, **kwargs: Any) -> CreditBucket:
        return ledger_grant(**kwargs).bucket


def tenant_make(**kwargs: Any) -> Tenant:
    """A new tenant, typed for mypy (factory_boy's calls are untyped)."""
    return cast(Tenant, TenantFactory(**kwargs))


def bucket_make(**kwargs: Any) -> CreditBucket:
    return cast(CreditBucket, BucketFactory(**kwargs))
