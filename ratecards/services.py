"""Every write to rate cards, their versions and rates, assignments and the cost catalog."""

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone

from ratecards.exceptions import (
    EffectiveFromInPast,
    EmptyVersion,
    InvalidAssignment,
    InvalidRate,
    PublishedVersionImmutable,
)
from ratecards.locks import rate_card_lock
from ratecards.models import (
    CostCatalogVersion,
    CostPrice,
    ModelClassMultiplier,
    PublishStatus,
    Rate,
    RateCard,
    RateCardAssignment,
    RateCardVersion,
)
from tenants.cache import config_stamp_bump
from tenants.models import Tenant

# An admin clicking "publish, effective now" needs a moment; anything older rewrites history
# (events already priced by the previous version would be priced differently on a re-price).
PUBLISH_GRACE = timedelta(minutes=5)


def _decimal(value: Decimal | int | str, *, field: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise InvalidRate(f"{field} must be a decimal number.", field=field) from None
    if not result.is_finite():
        raise InvalidRate(f"{field} must be a finite number.", field=field)
    return result


def _refuse_published(version: RateCardVersion | CostCatalogVersion) -> None:
    status = type(version).objects.filter(pk=version.pk).values_list("status", flat=True).first()
    if status == PublishStatus.PUBLISHED:
        raise PublishedVersionImmutable(f"{version} is published and cannot be changed.")


def _check_effective_from(effective_from: datetime, now: datetime) -> None:
    if timezone.is_naive(effective_from):
        raise EffectiveFromInPast("effective_from must carry a time zone.")
    if effective_from < now - PUBLISH_GRACE:
        raise EffectiveFromInPast(
            "effective_from lies in the past; a version can only take effect from now on."
        )


# Rate cards and their versions


def ratecard_create(*, name: str, slug: str, is_default: bool = False) -> RateCard:
    with transaction.atomic():
        if is_default:
            RateCard.objects.filter(is_default=True).update(is_default=False)
        card = RateCard.objects.create(name=name, slug=slug, is_default=is_default)
        if is_default:
            config_stamp_bump()  # tenants without an assignment now price by this card
    return card


def ratecard_set_default(*, rate_card: RateCard) -> RateCard:
    with transaction.atomic():
        RateCard.objects.filter(is_default=True).exclude(pk=rate_card.pk).update(is_default=False)
        RateCard.objects.filter(pk=rate_card.pk).update(is_default=True)
        config_stamp_bump()
    rate_card.is_default = True
    return rate_card


def ratecard_version_create_draft(
    *, rate_card: RateCard, copy_from: RateCardVersion | None = None, notes: str = ""
) -> RateCardVersion:
    """A new draft numbered after the latest version, with the rates and multipliers of
    `copy_from` (default: the latest version, published or not)."""
    with transaction.atomic():
        rate_card_lock(rate_card_id=rate_card.pk)
        latest = rate_card.versions.order_by("-number").first()
        source = copy_from or latest
        if source is not None and source.rate_card_id != rate_card.pk:
            raise InvalidRate("copy_from belongs to another rate card.", field="copy_from")
        version = RateCardVersion.objects.create(
            rate_card=rate_card, number=latest.number + 1 if latest else 1, notes=notes
        )
        if source is not None:
            Rate.objects.bulk_create(
                Rate(
                    version=version,
                    action=r.action,
                    model_class=r.model_class,
                    credits_per_unit=r.credits_per_unit,
                    charge_on=r.charge_on,
                )
                for r in source.rates.all()
            )
            ModelClassMultiplier.objects.bulk_create(
                ModelClassMultiplier(
                    version=version, model_class=m.model_class, multiplier=m.multiplier
                )
                for m in source.multipliers.all()
            )
    return version


def rate_set(
    *,
    version: RateCardVersion,
    action: str,
    credits_per_unit: Decimal | int | str,
    model_class: str = "",
    charge_on: str = Rate.ChargeOn.ALWAYS,
) -> Rate:
    """Adds or changes one rate of a draft version."""
    try:
        validate_slug(action)
    except ValidationError:
        raise InvalidRate(
            "action must be a slug (letters, digits, _ and -).", field="action"
        ) from None
    amount = _decimal(credits_per_unit, field="credits_per_unit")
    if amount < 0:
        raise InvalidRate("credits_per_unit may not be negative.", field="credits_per_unit")
    if amount != amount.quantize(Decimal("0.0001")):
        raise InvalidRate(
            "credits_per_unit has at most 4 decimal places.", field="credits_per_unit"
        )
    if charge_on not in Rate.ChargeOn.values:
        raise InvalidRate(f"charge_on must be one of {Rate.ChargeOn.values}.", field="charge_on")
    with transaction.atomic():
        _refuse_published(version)
        rate, _ = Rate.objects.update_or_create(
            version=version,
            action=action,
            model_class=model_class,
            defaults={"credits_per_unit": amount, "charge_on": charge_on},
        )
    return rate


def rate_delete(*, version: RateCardVersion, action: str, model_class: str = "") -> None:
    with transaction.atomic():
        _refuse_published(version)
        Rate.objects.filter(version=version, action=action, model_class=model_class).delete()


def multiplier_set(
    *, version: RateCardVersion, model_class: str, multiplier: Decimal | int | str
) -> ModelClassMultiplier:
    value = _decimal(multiplier, field="multiplier")
    if value <= 0:
        raise InvalidRate("multiplier must be greater than 0.", field="multiplier")
    if not model_class:
        raise InvalidRate("A multiplier needs a model class.", field="model_class")
    with transaction.atomic():
        _refuse_published(version)
        found, _ = ModelClassMultiplier.objects.update_or_create(
            version=version, model_class=model_class, defaults={"multiplier": value}
        )
    return found


def ratecard_version_publish(
    *, version: RateCardVersion, effective_from: datetime
) -> RateCardVersion:
    """Freezes a draft; it prices events from effective_from (plus each tenant's notice)."""
    now = timezone.now()
    _check_effective_from(effective_from, now)
    with transaction.atomic():
        rate_card_lock(rate_card_id=version.rate_card_id)
        _refuse_published(version)
        if not version.rates.exists():
            raise EmptyVersion()
        version.status = PublishStatus.PUBLISHED
        version.effective_from = effective_from
        version.published_at = now
        version.save(update_fields=["status", "effective_from", "published_at"])
        # Cached pricers hold every published version with its validity range: this one
        # prices from its effective_from (plus notice) in every process, with no later bump.
        config_stamp_bump()
    return version


# Assignments


def ratecard_assign(
    *,
    tenant: Tenant,
    rate_card: RateCard,
    mode: str,
    notice_days: int = 0,
    pinned_version: RateCardVersion | None = None,
    pinned_until: datetime | None = None,
    valid_from: datetime | None = None,
) -> RateCardAssignment:
    """Puts the tenant on a card from `valid_from` (default now); billing calls this when a
    subscription or contract starts or changes. Adds to the tenant's assignment history rather
    than overwriting it, so events that occurred earlier keep the terms they occurred under.

    Assigning the terms already in force at valid_from adds nothing and returns that row (billing
    re-applies a contract freely); a second assignment at the very same instant replaces the
    first. valid_from may not lie in the past (beyond a short grace), for the same reason as a
    version's effective_from: it would re-price events already priced under the earlier terms.
    """
    now = timezone.now()
    valid_from = valid_from or now
    assignment_validate(
        rate_card=rate_card,
        mode=mode,
        notice_days=notice_days,
        pinned_version=pinned_version,
        pinned_until=pinned_until,
        valid_from=valid_from,
        now=now,
    )
    terms: dict[str, Any] = {
        "rate_card": rate_card,
        "mode": mode,
        "notice_days": notice_days,
        "pinned_version": pinned_version,
        "pinned_until": pinned_until,
    }
    with transaction.atomic():
        in_force = (
            RateCardAssignment.objects.filter(tenant=tenant, valid_from__lte=valid_from)
            .order_by("-valid_from")
            .first()
        )
        if in_force is not None and _terms(in_force) == _terms(RateCardAssignment(**terms)):
            return in_force
        assignment, _ = RateCardAssignment.objects.update_or_create(
            tenant=tenant, valid_from=valid_from, defaults=terms
        )
        config_stamp_bump()  # cached pricers hold the tenant's assignment history
    return assignment


def _terms(a: RateCardAssignment) -> tuple[object, ...]:
    return (a.rate_card_id, a.mode, a.notice_days, a.pinned_version_id, a.pinned_until)


def assignment_validate(
    *,
    rate_card: RateCard,
    mode: str,
    notice_days: int,
    pinned_version: RateCardVersion | None,
    pinned_until: datetime | None,
    valid_from: datetime | None = None,
    now: datetime | None = None,
) -> None:
    """Raises InvalidAssignment naming the field; the admin form uses it too."""
    if mode not in RateCardAssignment.Mode.values:
        raise InvalidAssignment(
            f"mode must be one of {RateCardAssignment.Mode.values}.", field="mode"
        )
    if notice_days < 0:
        raise InvalidAssignment("notice_days may not be negative.", field="notice_days")
    if pinned_until is not None and timezone.is_naive(pinned_until):
        raise InvalidAssignment("pinned_until must carry a time zone.", field="pinned_until")
    if valid_from is not None:
        if timezone.is_naive(valid_from):
            raise InvalidAssignment("valid_from must carry a time zone.", field="valid_from")
        if valid_from < (now or timezone.now()) - PUBLISH_GRACE:
            raise InvalidAssignment(
                "valid_from lies in the past; an assignment can only take effect from now on.",
                field="valid_from",
            )
    if mode == RateCardAssignment.Mode.FOLLOW:
        if pinned_version is not None or pinned_until is not None:
            raise InvalidAssignment(
                "A follow assignment has no pinned version or date.", field="pinned_version"
            )
        return
    if notice_days:
        raise InvalidAssignment("notice_days applies to follow mode only.", field="notice_days")
    if pinned_version is None:
        raise InvalidAssignment("A pinned assignment needs a version.", field="pinned_version")
    if pinned_version.rate_card_id != rate_card.pk or not pinned_version.is_published:
        raise InvalidAssignment(
            "The pinned version must be a published version of the same card.",
            field="pinned_version",
        )


# The cost catalog


def cost_catalog_version_create_draft(
    *, currency: str = "USD", notes: str = ""
) -> CostCatalogVersion:
    """A new draft numbered after the latest, with the latest version's prices copied."""
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise InvalidRate("currency must be an ISO 4217 code such as USD.", field="currency")
    with transaction.atomic():
        # Catalog versions are created by hand in the admin; the unique number refuses a race.
        latest = CostCatalogVersion.objects.order_by("-number").first()
        version = CostCatalogVersion.objects.create(
            number=latest.number + 1 if latest else 1, currency=currency, notes=notes
        )
        if latest is not None and latest.currency == currency:
            CostPrice.objects.bulk_create(
                CostPrice(
                    version=version,
                    component=p.component,
                    model_class=p.model_class,
                    price_minor=p.price_minor,
                    per_units=p.per_units,
                )
                for p in latest.prices.all()
            )
    return version


def cost_price_set(
    *,
    version: CostCatalogVersion,
    component: str,
    price_minor: Decimal | int | str,
    per_units: int = 1,
    model_class: str = "",
) -> CostPrice:
    if component not in CostPrice.Component.values:
        raise InvalidRate(
            f"component must be one of {CostPrice.Component.values}.", field="component"
        )
    amount = _decimal(price_minor, field="price_minor")
    if amount < 0:
        raise InvalidRate("price_minor may not be negative.", field="price_minor")
    if per_units < 1:
        raise InvalidRate("per_units must be at least 1.", field="per_units")
    with transaction.atomic():
        _refuse_published(version)
        found, _ = CostPrice.objects.update_or_create(
            version=version,
            component=component,
            model_class=model_class,
            defaults={"price_minor": amount, "per_units": per_units},
        )
    return found


def cost_catalog_version_publish(
    *, version: CostCatalogVersion, effective_from: datetime
) -> CostCatalogVersion:
    now = timezone.now()
    _check_effective_from(effective_from, now)
    with transaction.atomic():
        _refuse_published(version)
        if not version.prices.exists():
            raise EmptyVersion("A cost catalog version without prices cannot be published.")
        version.status = PublishStatus.PUBLISHED
        version.effective_from = effective_from
        version.published_at = now
        version.save(update_fields=["status", "effective_from", "published_at"])
        config_stamp_bump()  # cached catalog timelines hold every published version
    return version


# The example card of seed_demo

EXAMPLE_RATES: list[tuple[str, str, str]] = [
    ("chat", "1", Rate.ChargeOn.ALWAYS),
    ("doc_search", "3", Rate.ChargeOn.ALWAYS),
    ("web_research", "10", Rate.ChargeOn.ALWAYS),
    ("action_execution", "15", Rate.ChargeOn.ALWAYS),
    # Outcome pricing: charged only when the run reports success.
    ("resolution", "50", Rate.ChargeOn.SUCCESS),
]
EXAMPLE_MULTIPLIERS = [("turbo", "6")]
# (component, minor units of USD, per units): $2.50 / 1M input, $15 / 1M output, $0.08 a tool
# call, $0.01 per 1,000 vector reads, $0.10 an orchestration run.
EXAMPLE_COSTS: list[tuple[str, str, int]] = [
    (CostPrice.Component.INPUT_TOKENS, "250", 1_000_000),
    (CostPrice.Component.OUTPUT_TOKENS, "1500", 1_000_000),
    (CostPrice.Component.TOOL_CALLS, "8", 1),
    (CostPrice.Component.VECTOR_READS, "1", 1_000),
    (CostPrice.Component.ORCHESTRATION_RUNS, "10", 1),
    (CostPrice.Component.GPU_SECONDS, "5", 100),  # 0.05 cents a GPU second
]


def ratecard_seed_example() -> RateCard:
    """The `standard` card (v1, effective now) and cost catalog v1; a second run changes nothing."""
    with transaction.atomic():
        card = RateCard.objects.filter(slug="standard").first()
        if card is None:
            has_default = RateCard.objects.filter(is_default=True).exists()
            card = ratecard_create(name="Standard", slug="standard", is_default=not has_default)
        if not card.versions.exists():
            version = ratecard_version_create_draft(rate_card=card, notes="Example card.")
            for action, credits, charge_on in EXAMPLE_RATES:
                rate_set(
                    version=version, action=action, credits_per_unit=credits, charge_on=charge_on
                )
            for model_class, multiplier in EXAMPLE_MULTIPLIERS:
                multiplier_set(version=version, model_class=model_class, multiplier=multiplier)
            ratecard_version_publish(version=version, effective_from=timezone.now())
        if not CostCatalogVersion.objects.exists():
            catalog = cost_catalog_version_create_draft(currency="USD", notes="Example costs.")
            for component, price_minor, per_units in EXAMPLE_COSTS:
                cost_price_set(
                    version=catalog,
                    component=component,
                    price_minor=price_minor,
                    per_units=per_units,
                )
            cost_catalog_version_publish(version=catalog, effective_from=timezone.now())
    return card
