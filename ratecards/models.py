"""Rate cards (what one unit of an action costs in credits) and the cost catalog (what it costs
the vendor in money).

Pricing rule, for an event (action, model_class, quantity) under a version:
1. model_class '' or None: the action's default rate (model_class '').
2. An exact (action, model_class) rate wins.
3. Otherwise the action's default rate x the version's multiplier for that model class
   (e.g. `turbo` x 6); no multiplier for the class → UnknownModelClass.
No rate for the action at all → UnknownAction. Credits = credits_per_unit x multiplier x
quantity, quantized to 0.0001 ROUND_HALF_UP.

A published version and everything under it is immutable: the ORM refuses (save/delete
raise) and, on PostgreSQL, triggers refuse too (migration 0002). A change is a new version.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.db.models import Q

from ratecards.exceptions import PublishedVersionImmutable
from tenants.models import TenantOwnedModel


class PublishStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class RateCard(models.Model):
    """Vendor-wide; tenants are attached by a RateCardAssignment or fall to the default card."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="ratecard_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class _ImmutableWhenPublished(models.Model):
    """Refuses save/delete once the row's *stored* status is published (the draft→published
    transition itself is the last allowed write)."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_if_published()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        self._refuse_if_published()
        return super().delete(*args, **kwargs)

    def _refuse_if_published(self) -> None:
        if self.pk is None:
            return
        stored = type(self)._default_manager.filter(pk=self.pk)
        if stored.filter(status=PublishStatus.PUBLISHED).exists():  # type: ignore[misc]
            raise PublishedVersionImmutable()


class _ImmutableUnderPublished(models.Model):
    """A child row (rate, multiplier, price) of a version: frozen once its version is published."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_if_published()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        self._refuse_if_published()
        return super().delete(*args, **kwargs)

    def _refuse_if_published(self) -> None:
        version_field = self._meta.get_field("version")
        version_ids = {self.version_id}  # type: ignore[attr-defined]
        if self.pk is not None:
            stored = type(self)._default_manager.filter(pk=self.pk)
            version_ids.update(stored.values_list("version_id", flat=True))  # type: ignore[misc]
        parent = version_field.related_model._default_manager  # type: ignore[union-attr]
        if parent.filter(pk__in=version_ids, status=PublishStatus.PUBLISHED).exists():
            raise PublishedVersionImmutable()


class RateCardVersion(_ImmutableWhenPublished):
    Status = PublishStatus

    rate_card = models.ForeignKey(RateCard, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    effective_from = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rate_card", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["rate_card", "number"], name="ratecardversion_number"),
            models.CheckConstraint(
                condition=Q(status=PublishStatus.DRAFT)
                | Q(effective_from__isnull=False, published_at__isnull=False),
                name="ratecardversion_published_has_dates",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rate_card.slug} v{self.number} ({self.status})"

    @property
    def is_published(self) -> bool:
        return self.status == PublishStatus.PUBLISHED

    def effective_for(self, notice_days: int) -> datetime:
        """When this version starts to apply to a tenant that is owed `notice_days` of notice."""
        if self.effective_from is None or self.published_at is None:
            raise ValueError(f"{self} is not published: it applies to no one.")
        return max(self.effective_from, self.published_at + timedelta(days=notice_days))


class Rate(_ImmutableUnderPublished):
    class ChargeOn(models.TextChoices):
        ALWAYS = "always", "Always"
        SUCCESS = "success", "Only on a successful outcome"

    version = models.ForeignKey(RateCardVersion, on_delete=models.CASCADE, related_name="rates")
    action = models.SlugField(max_length=64)
    model_class = models.CharField(max_length=64, blank=True, default="")
    credits_per_unit = models.DecimalField(max_digits=18, decimal_places=4)
    charge_on = models.CharField(max_length=16, choices=ChargeOn.choices, default=ChargeOn.ALWAYS)

    class Meta:
        ordering = ["action", "model_class"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "action", "model_class"], name="rate_version_action_class"
            ),
            models.CheckConstraint(
                condition=Q(credits_per_unit__gte=0), name="rate_credits_not_negative"
            ),
        ]

    def __str__(self) -> str:
        model_class = f"/{self.model_class}" if self.model_class else ""
        return f"{self.action}{model_class}: {self.credits_per_unit}"


class ModelClassMultiplier(_ImmutableUnderPublished):
    version = models.ForeignKey(
        RateCardVersion, on_delete=models.CASCADE, related_name="multipliers"
    )
    model_class = models.CharField(max_length=64)
    multiplier = models.DecimalField(max_digits=10, decimal_places=4)

    class Meta:
        ordering = ["model_class"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "model_class"], name="multiplier_version_class"
            ),
            models.CheckConstraint(condition=Q(multiplier__gt=0), name="multiplier_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.model_class} x{self.multiplier}"


class RateCardAssignment(TenantOwnedModel):
    """Which card a tenant is on from `valid_from`; billing writes it. Rows are history, never
    overwritten: the row in force at a moment is the one with the greatest valid_from <= it, so
    a backdated event is priced by the card the tenant was on then. No row in force = the
    default card, follow, 0 notice."""

    class Mode(models.TextChoices):
        FOLLOW = "follow", "Follow the card (after the notice period)"
        PINNED = "pinned", "Pinned to one version"

    rate_card = models.ForeignKey(RateCard, on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.FOLLOW)
    notice_days = models.PositiveIntegerField(default=0)
    pinned_version = models.ForeignKey(
        RateCardVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    pinned_until = models.DateTimeField(null=True, blank=True)
    valid_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Its index serves the (tenant, valid_from) lookups; no second index needed.
            models.UniqueConstraint(
                fields=["tenant", "valid_from"], name="ratecardassignment_tenant_valid_from"
            ),
            models.CheckConstraint(
                condition=Q(mode="follow", pinned_version__isnull=True, pinned_until__isnull=True)
                | Q(mode="pinned", pinned_version__isnull=False, notice_days=0),
                name="ratecardassignment_mode_fields",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} → {self.rate_card_id} ({self.mode}) from {self.valid_from}"


class CostCatalogVersion(_ImmutableWhenPublished):
    """Vendor-internal unit costs (COGS), versioned like rate cards and frozen once published."""

    Status = PublishStatus

    number = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    currency = models.CharField(max_length=3, default="USD")
    effective_from = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status=PublishStatus.DRAFT)
                | Q(effective_from__isnull=False, published_at__isnull=False),
                name="costcatalogversion_published_has_dates",
            ),
        ]

    def __str__(self) -> str:
        return f"cost catalog v{self.number} ({self.status}, {self.currency})"


class CostPrice(_ImmutableUnderPublished):
    class Component(models.TextChoices):
        INPUT_TOKENS = "input_tokens", "Input tokens"
        OUTPUT_TOKENS = "output_tokens", "Output tokens"
        TOOL_CALLS = "tool_calls", "Tool calls"
        VECTOR_READS = "vector_reads", "Vector reads"
        ORCHESTRATION_RUNS = "orchestration_runs", "Orchestration runs"
        # Per second of GPU time: usage events carry it to the millisecond (gpu_seconds).
        GPU_SECONDS = "gpu_seconds", "GPU seconds"

    version = models.ForeignKey(CostCatalogVersion, on_delete=models.CASCADE, related_name="prices")
    component = models.CharField(max_length=32, choices=Component.choices)
    model_class = models.CharField(max_length=64, blank=True, default="")
    # Minor units (cents for USD) per `per_units` units, e.g. 250 per 1,000,000 input tokens.
    price_minor = models.DecimalField(max_digits=18, decimal_places=6)
    per_units = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["component", "model_class"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "component", "model_class"], name="costprice_version_component"
            ),
            models.CheckConstraint(condition=Q(price_minor__gte=0), name="costprice_not_negative"),
            models.CheckConstraint(condition=Q(per_units__gt=0), name="costprice_per_units_pos"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.component}/{self.model_class or '*'}: {self.price_minor} per {self.per_units}"
        )
