"""Who is asking: tenants, their members and their API keys."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Tenant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # From this moment new workflow runs are refused (402 `subscription_past_due`): billing
    # sets it when a subscription invoice fails (to the end of the vendor's grace days) and
    # clears it when the invoice is paid. Here, so metering reads it without asking billing.
    runs_refused_from = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class TenantOwnedModel(models.Model):
    """Base of every tenant-owned row: indexes and unique constraints start with `tenant`."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True


class TenantKeyedModel(TenantOwnedModel):
    """A tenant-owned row whose table has a unique constraint or index led by `tenant` that
    serves every lookup by tenant, so the foreign key needs no single-column index of its own
    (one index less to write per row: the ledger's and metering's hot tables)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+", db_index=False)

    class Meta:
        abstract = True


class Membership(TenantOwnedModel):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        BILLING = "billing", "Billing"
        MEMBER = "member", "Member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_tenant_user_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant_id} as {self.role}"


class Invitation(TenantOwnedModel):
    """An invitation to join a tenant (tenants/services.py, "The team"). The e-mailed link
    carries a signed token naming this row; the row decides: a link works once, until
    `expires_at`, and not after an owner or admin withdrew it (or a newer invitation to the
    same address replaced it)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        WITHDRAWN = "withdrawn", "Withdrawn"

    email = models.EmailField(max_length=254)  # lower case
    role = models.CharField(max_length=16, choices=Membership.Role.choices)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # When it was accepted or withdrawn, and by whom (the new member; whoever withdrew it).
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            # One open invitation per address and tenant: a new one closes the old one first.
            models.UniqueConstraint(
                fields=["tenant", "email"],
                condition=Q(status="pending"),
                name="invitation_one_pending_uniq",
            ),
            models.CheckConstraint(
                condition=Q(status="pending", closed_at__isnull=True)
                | (~Q(status="pending") & Q(closed_at__isnull=False)),
                name="invitation_closed_when_not_pending",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="invitation_expires_after_created",
            ),
        ]
        indexes = [
            # The team page's list of a tenant's pending invitations.
            models.Index(
                fields=["tenant", "created_at"],
                name="invitation_tenant_pending_idx",
                condition=Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.tenant_id} as {self.role} ({self.status})"


class ApiKey(TenantOwnedModel):
    """An integration's credential. Only a SHA-256 of the key is kept; the key is shown once.

    Keys are looked up by their visible prefix, which is globally unique: the one index here
    that cannot start with `tenant`, because the tenant is what the key tells us.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"
        # The routes that move money: top-ups, auto top-up, payment methods, webhook endpoints
        # (a view says so with `required_scope`). Keys get it only when asked for.
        BILLING = "billing", "Billing"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="apikey_tenant_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class ConfigStamp(models.Model):
    """One row whose value changes (in the same transaction) with everything the processes
    cache: API keys, tenants' status, rate cards, assignments, cost catalogs. See tenants/cache.py.

    A new value is 63 random bits, never `value + 1`: after a rollback restores the old value,
    `+ 1` would hand out the rolled-back value again, and whatever was cached under it inside
    the rolled-back transaction would be served. A random value is current again only by a
    2**-63 chance.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    value = models.BigIntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="configstamp_one_row")]

    def __str__(self) -> str:
        return f"config stamp {self.value}"


class OutboxMessage(models.Model):
    """A side effect of a committed change, until a worker has run it (tenants/outbox.py).

    Written in the change's transaction; `sent_at` is when the broker first took it,
    `handled_at` when its task ran to the end (a `once` task sets it in the transaction of its
    effect). Not handled after MAX_ATTEMPTS sends: given up, listed in the admin.
    """

    task = models.CharField(max_length=200)
    kwargs = models.JSONField()
    once = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The sweep's read: what is not handled yet, by when it is due.
            models.Index(
                fields=["next_attempt_at"],
                name="outbox_unhandled_idx",
                condition=Q(handled_at__isnull=True),
            ),
            # The sweep's purge of old handled messages.
            models.Index(
                fields=["handled_at"],
                name="outbox_handled_idx",
                condition=Q(handled_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} #{self.pk}"


class Lease(models.Model):
    """A named job's claim to run alone until `expires_at` (tenants/leases.py)."""

    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder} until {self.expires_at:%Y-%m-%d %H:%M:%S}"
