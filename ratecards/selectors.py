"""Reads: which version is in force for a tenant, what an event costs in credits, what it costs
the vendor in money. `price()` is on the hot path of usage ingestion (see its docstring)."""

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q
from django.utils import timezone

from ratecards.exceptions import (
    CostCatalogNotFound,
    RateCardNotFound,
    UnknownAction,
    UnknownCostComponent,
    UnknownModelClass,
)
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
from tenants.cache import StampedCache, config_stamp_current
from tenants.models import Tenant

CREDIT_QUANTUM = Decimal("0.0001")
ONE = Decimal(1)


@dataclass(frozen=True)
class PriceQuote:
    credits: Decimal  # credits_per_unit x quantity, quantized to 0.0001 ROUND_HALF_UP
    credits_per_unit: Decimal  # the rate x the model-class multiplier (unrounded)
    multiplier: Decimal  # 1 unless a model-class multiplier applied
    version: RateCardVersion
    rate: Rate
    charge_on: str


@dataclass(frozen=True)
class CostQuote:
    total_minor: Decimal  # unrounded minor units of `currency`; round where money is booked
    currency: str
    lines: dict[str, Decimal]
    version: CostCatalogVersion


@dataclass(frozen=True)
class ScheduledVersion:
    version: RateCardVersion
    applies_from: datetime  # when it starts to apply to this tenant


@dataclass(frozen=True)
class TrapInfo:
    pinned_number: int
    pinned_until: datetime | None
    newer_count: int
    newest_number: int
    newest_effective_from: datetime


@dataclass(frozen=True)
class _PricedVersion:
    version: RateCardVersion
    rates: dict[tuple[str, str], Rate]
    multipliers: dict[str, Decimal]


# In-process cache of published versions with their rates and multipliers. Safe without
# invalidation because a published version can never change again (ORM guard + PostgreSQL
# trigger), so (card, version id, published_at) names one frozen set of rates forever; a new
# price is a new version, i.e. a new key. Drafts are never priced, so never cached.
_priced_versions: dict[tuple[int, int, datetime | None], _PricedVersion] = {}
_cost_versions: dict[tuple[int, datetime | None], dict[tuple[str, str], CostPrice]] = {}

# Which versions exist and which card a tenant is on do change (an admin publishes, billing
# assigns): these caches hold them under the config stamp (tenants/cache.py), which those
# services bump. An entry holds the whole history with validity ranges (TenantPricer), so a
# version that takes effect later, or a back-dated event, needs neither a bump nor a query.
_pricers: "StampedCache[int | None, TenantPricer]" = StampedCache("tenant_pricers", maxsize=8192)
_catalogs: "StampedCache[None, CatalogTimeline]" = StampedCache("cost_catalogs", maxsize=1)


def price_cache_clear() -> None:
    _priced_versions.clear()
    _cost_versions.clear()
    _pricers.clear()
    _catalogs.clear()


def _priced(version: RateCardVersion) -> _PricedVersion:
    key = (version.rate_card_id, version.pk, version.published_at)
    cached = _priced_versions.get(key)
    if cached is None:
        cached = _PricedVersion(
            version=version,
            rates={(r.action, r.model_class): r for r in version.rates.all()},
            multipliers={m.model_class: m.multiplier for m in version.multipliers.all()},
        )
        if version.is_published:
            _priced_versions[key] = cached
    return cached


def _priced_preload(versions: list[RateCardVersion]) -> None:
    """Loads the rates of published versions not cached yet, in two queries whatever their
    number, so a version that takes effect later is priced at that instant with no query."""
    missing = {
        v.pk: v
        for v in versions
        if v.is_published and (v.rate_card_id, v.pk, v.published_at) not in _priced_versions
    }
    if not missing:
        return
    rates: dict[int, dict[tuple[str, str], Rate]] = {pk: {} for pk in missing}
    for rate in Rate.objects.filter(version_id__in=missing):
        rates[rate.version_id][(rate.action, rate.model_class)] = rate
    multipliers: dict[int, dict[str, Decimal]] = {pk: {} for pk in missing}
    for m in ModelClassMultiplier.objects.filter(version_id__in=missing):
        multipliers[m.version_id][m.model_class] = m.multiplier
    for pk, version in missing.items():
        key = (version.rate_card_id, pk, version.published_at)
        _priced_versions[key] = _PricedVersion(
            version=version, rates=rates[pk], multipliers=multipliers[pk]
        )


def _quote(
    priced: _PricedVersion, action: str, model_class: str | None, quantity: Decimal | int
) -> PriceQuote:
    model_class = model_class or ""
    multiplier = ONE
    rate = priced.rates.get((action, model_class))
    if rate is None:
        rate = priced.rates.get((action, ""))
        if rate is None:
            if any(a == action for a, _ in priced.rates):
                raise UnknownModelClass(
                    f"The action '{action}' has no rate for the model class '{model_class}'.",
                    model_class=model_class,
                )
            raise UnknownAction(f"The rate card has no action '{action}'.", action=action)
        if model_class:
            found = priced.multipliers.get(model_class)
            if found is None:
                raise UnknownModelClass(
                    f"The rate card has no model class '{model_class}'.", model_class=model_class
                )
            multiplier = found
    per_unit = rate.credits_per_unit * multiplier
    credits = (per_unit * Decimal(quantity)).quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)
    return PriceQuote(
        credits=credits,
        credits_per_unit=per_unit,
        multiplier=multiplier,
        version=priced.version,
        rate=rate,
        charge_on=rate.charge_on,
    )


@dataclass(frozen=True)
class CardTerms:
    """One assignment's terms with its card's published versions: which version it prices by.

    Version in force at `at`:
    - pinned: pinned_version while at < pinned_until (forever if null); after, as follow with
      no notice.
    - follow: the newest published version v whose applies_from(v) <= at, where
      applies_from(v) = max(v.effective_from, v.published_at + notice_days). The card's first
      version needs no notice (it replaces nothing), so it applies from its effective_from.
    """

    assignment: RateCardAssignment | None  # None: no assignment, the default card
    versions: list[RateCardVersion]  # published, by number
    # The follow rule as a step function: _times ascending, _steps[i] in force from _times[i].
    _times: list[datetime] = field(init=False, repr=False, compare=False)
    _steps: list[RateCardVersion] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        times: list[datetime] = []
        steps: list[RateCardVersion] = []
        for version in sorted(self.versions, key=lambda v: (self.applies_from(v), v.number)):
            moment = self.applies_from(version)
            if steps and version.number < steps[-1].number:
                continue  # an older number never takes over from a newer one
            if times and times[-1] == moment:
                steps[-1] = version
            else:
                times.append(moment)
                steps.append(version)
        object.__setattr__(self, "_times", times)
        object.__setattr__(self, "_steps", steps)

    @property
    def rate_card(self) -> RateCard:
        if self.assignment is not None:
            return self.assignment.rate_card
        if not self.versions:
            raise RateCardNotFound()
        return self.versions[0].rate_card

    @property
    def notice_days(self) -> int:
        follow = (
            self.assignment is not None and self.assignment.mode == RateCardAssignment.Mode.FOLLOW
        )
        return self.assignment.notice_days if follow and self.assignment else 0

    def _pinned_at(self, at: datetime) -> RateCardVersion | None:
        a = self.assignment
        if a is None or a.mode != RateCardAssignment.Mode.PINNED:
            return None
        return a.pinned_version if a.pinned_until is None or at < a.pinned_until else None

    def applies_from(self, version: RateCardVersion) -> datetime:
        first = version.pk == self.versions[0].pk
        return version.effective_for(0 if first else self.notice_days)

    def version_at(self, at: datetime) -> RateCardVersion:
        version = self._pinned_at(at)
        if version is not None:
            return version
        i = bisect_right(self._times, at)
        if i == 0:
            raise RateCardNotFound()
        return self._steps[i - 1]

    def moments(self) -> set[datetime]:
        """Every moment at which version_at() may change."""
        found = {self.applies_from(v) for v in self.versions}
        a = self.assignment
        if a is not None and a.pinned_until is not None:
            found.add(a.pinned_until)
        return found


@dataclass(frozen=True)
class TenantPricer:
    """A snapshot of one tenant's assignment history and the published versions of every card
    in it. Prices any number of events without another query (a batch builds one).

    An event at `at` is priced under the assignment in force then (the row with the greatest
    valid_from <= at; before the first row, the default card, follow, no notice), by the version
    that assignment's terms put in force at `at` (CardTerms).
    """

    starts: list[datetime]  # the assignments' valid_from, ascending
    terms: list[CardTerms]  # terms[0]: before any assignment; terms[i + 1] from starts[i]

    def terms_at(self, at: datetime) -> CardTerms:
        return self.terms[bisect_right(self.starts, at)]

    def version_at(self, at: datetime) -> RateCardVersion:
        return self.terms_at(at).version_at(at)

    def price(
        self, *, action: str, model_class: str | None, quantity: Decimal | int, at: datetime
    ) -> PriceQuote:
        return _quote(_priced(self.version_at(at)), action, model_class, quantity)

    def schedule(self, now: datetime) -> list[ScheduledVersion]:
        """The versions that take over after `now`, each with the moment it starts to apply
        (a later assignment, a notice period and pinning included)."""
        moments = set(self.starts).union(*(t.moments() for t in self.terms))
        schedule: list[ScheduledVersion] = []
        current = self._in_force_or_none(now)
        for moment in sorted(m for m in moments if m > now):
            version = self._in_force_or_none(moment)
            if version is not None and version != current:
                schedule.append(ScheduledVersion(version=version, applies_from=moment))
                current = version
        return schedule

    def _in_force_or_none(self, at: datetime) -> RateCardVersion | None:
        try:
            return self.version_at(at)
        except RateCardNotFound:
            return None


def tenant_pricer(*, tenant: Tenant | None, stamp: int | None = None) -> TenantPricer:
    """The tenant's pricer from the process's cache while the config stamp is unchanged: no
    query inside an API request (its authentication read the stamp), one (the stamp) outside.
    Pass `stamp` to reuse one read across calls. A miss loads it (_tenant_pricer_load)."""
    if tenant is not None and tenant.pk is None:
        return _tenant_pricer_load(tenant=tenant)
    stamp = config_stamp_current() if stamp is None else stamp
    key = tenant.pk if tenant is not None else None
    pricer = _pricers.get(key, stamp)
    if pricer is None:
        pricer = _tenant_pricer_load(tenant=tenant)
        _pricers.put(key, stamp, pricer)
    return pricer


def _tenant_pricer_load(*, tenant: Tenant | None) -> TenantPricer:
    """Two small indexed queries: the tenant's assignment rows (a handful: one per plan or
    contract change), the published versions of their cards and of the default card."""
    assignments: list[RateCardAssignment] = []
    if tenant is not None and tenant.pk is not None:
        assignments = list(
            RateCardAssignment.objects.select_related("rate_card", "pinned_version")
            .filter(tenant_id=tenant.pk)
            .order_by("valid_from")
        )
    card_ids = {a.rate_card_id for a in assignments}
    published = (
        RateCardVersion.objects.filter(status=PublishStatus.PUBLISHED)
        .filter(Q(rate_card_id__in=card_ids) | Q(rate_card__is_default=True))
        .select_related("rate_card")
        .order_by("number")
    )
    by_card: dict[int, list[RateCardVersion]] = {}
    default: list[RateCardVersion] = []
    for version in published:
        by_card.setdefault(version.rate_card_id, []).append(version)
        if version.rate_card.is_default:
            default.append(version)
    _priced_preload([v for versions in by_card.values() for v in versions])
    return TenantPricer(
        starts=[a.valid_from for a in assignments],
        terms=[CardTerms(assignment=None, versions=default)]
        + [CardTerms(assignment=a, versions=by_card.get(a.rate_card_id, [])) for a in assignments],
    )


def assignment_in_force(*, tenant: Tenant, at: datetime) -> RateCardAssignment | None:
    """The tenant's assignment row in force at `at` (None: the default card applies)."""
    return (
        RateCardAssignment.objects.select_related("rate_card", "pinned_version")
        .filter(tenant=tenant, valid_from__lte=at)
        .order_by("-valid_from")
        .first()
    )


def assignment_or_default(*, tenant: Tenant) -> RateCardAssignment:
    """The tenant's assignment in force now, or an unsaved stand-in for the default card
    (follow, 0 notice)."""
    assignment = assignment_in_force(tenant=tenant, at=timezone.now())
    if assignment is not None:
        return assignment
    card = RateCard.objects.filter(is_default=True).first()
    if card is None:
        raise RateCardNotFound("No rate card is assigned to this tenant and there is no default.")
    return RateCardAssignment(tenant=tenant, rate_card=card)


def version_in_force(
    *, tenant: Tenant | None, at: datetime, stamp: int | None = None
) -> RateCardVersion:
    """The published version that prices this tenant's events at `at` (rules: TenantPricer)."""
    return tenant_pricer(tenant=tenant, stamp=stamp).version_at(at)


def price(
    *,
    tenant: Tenant | None,
    action: str,
    model_class: str | None,
    quantity: Decimal | int,
    at: datetime,
    stamp: int | None = None,
) -> PriceQuote:
    """What `quantity` units of `action` on `model_class` cost this tenant at `at`.

    From the in-process caches (see tenant_pricer): no query in an API request while the
    config stamp is unchanged. The pricing rule is in ratecards.models.
    """
    return tenant_pricer(tenant=tenant, stamp=stamp).price(
        action=action, model_class=model_class, quantity=quantity, at=at
    )


def version_rates(*, version: RateCardVersion) -> tuple[list[Rate], dict[str, Decimal]]:
    """A version's rates (sorted) and multipliers, from the cache when published."""
    priced = _priced(version)
    rates = sorted(priced.rates.values(), key=lambda r: (r.action, r.model_class))
    return rates, dict(sorted(priced.multipliers.items()))


def scheduled_versions(*, tenant: Tenant, now: datetime) -> list[ScheduledVersion]:
    """Published versions that will take over for this tenant after `now`, in order, each with
    the moment it starts to apply to this tenant (notice and pinning included)."""
    return tenant_pricer(tenant=tenant).schedule(now)


def rate_card_trap(*, tenant: Tenant) -> TrapInfo | None:
    """A tenant pinned (now) while its card has published versions newer than the pinned one."""
    assignment = assignment_in_force(tenant=tenant, at=timezone.now())
    return assignment_trap(assignment=assignment) if assignment is not None else None


def assignment_trap(*, assignment: RateCardAssignment) -> TrapInfo | None:
    pinned = assignment.pinned_version
    if assignment.mode != RateCardAssignment.Mode.PINNED or pinned is None:
        return None
    newer = list(
        RateCardVersion.objects.filter(
            status=PublishStatus.PUBLISHED,
            rate_card_id=assignment.rate_card_id,
            number__gt=pinned.number,
        )
        .order_by("-number")
        .values_list("number", "effective_from")
    )
    if not newer:
        return None
    newest_number, newest_effective_from = newer[0]
    if newest_effective_from is None:  # published rows always have one (check constraint)
        return None
    return TrapInfo(
        pinned_number=pinned.number,
        pinned_until=assignment.pinned_until,
        newer_count=len(newer),
        newest_number=newest_number,
        newest_effective_from=newest_effective_from,
    )


def estimate_credits(
    *,
    tenant_or_none: Tenant | None,
    counts: Iterable[tuple[str, str | None, Decimal | int]],
    at: datetime,
) -> Decimal:
    """Monthly credits for expected (action, model_class, monthly_count) rows, every action
    counted as charged (outcome-priced ones too: the estimate is an upper bound for those)."""
    priced = _priced(tenant_pricer(tenant=tenant_or_none).version_at(at))
    return sum(
        (
            _quote(priced, action, model_class, count).credits
            for action, model_class, count in counts
        ),
        Decimal("0.0000"),
    )


@dataclass(frozen=True)
class CatalogTimeline:
    """Every published cost catalog version as a step function of time: in force at `at` is the
    highest number whose effective_from <= at."""

    times: list[datetime]  # ascending; steps[i] is in force from times[i]
    steps: list[CostCatalogVersion]

    @classmethod
    def build(cls, versions: Iterable[CostCatalogVersion]) -> "CatalogTimeline":
        times: list[datetime] = []
        steps: list[CostCatalogVersion] = []
        for version in sorted(versions, key=lambda v: (v.effective_from, v.number)):
            moment = version.effective_from
            if moment is None or (steps and version.number < steps[-1].number):
                continue
            if times and times[-1] == moment:
                steps[-1] = version
            else:
                times.append(moment)
                steps.append(version)
        return cls(times=times, steps=steps)

    def at(self, at: datetime) -> CostCatalogVersion:
        i = bisect_right(self.times, at)
        if i == 0:
            raise CostCatalogNotFound()
        return self.steps[i - 1]


def cost_catalog_in_force(*, at: datetime, stamp: int | None = None) -> CostCatalogVersion:
    """From the process's cache while the config stamp is unchanged (one query on a miss)."""
    stamp = config_stamp_current() if stamp is None else stamp
    timeline = _catalogs.get(None, stamp)
    if timeline is None:
        versions = list(CostCatalogVersion.objects.filter(status=PublishStatus.PUBLISHED))
        _cost_prices_preload(versions)
        timeline = CatalogTimeline.build(versions)
        _catalogs.put(None, stamp, timeline)
    return timeline.at(at)


def _cost_prices_preload(versions: list[CostCatalogVersion]) -> None:
    """The prices of published versions not cached yet, in one query (see _priced_preload)."""
    missing = {v.pk: v for v in versions if (v.pk, v.published_at) not in _cost_versions}
    if not missing:
        return
    prices: dict[int, dict[tuple[str, str], CostPrice]] = {pk: {} for pk in missing}
    for p in CostPrice.objects.filter(version_id__in=missing):
        prices[p.version_id][(p.component, p.model_class)] = p
    for pk, version in missing.items():
        _cost_versions[(pk, version.published_at)] = prices[pk]


def _cost_prices(version: CostCatalogVersion) -> dict[tuple[str, str], CostPrice]:
    # Same reasoning as _priced_versions: a published catalog version is frozen.
    key = (version.pk, version.published_at)
    prices = _cost_versions.get(key)
    if prices is None:
        prices = {(p.component, p.model_class): p for p in version.prices.all()}
        if version.status == PublishStatus.PUBLISHED:
            _cost_versions[key] = prices
    return prices


def cost_quote(
    *,
    components: Mapping[str, int | Decimal],
    model_class: str | None,
    at: datetime,
    stamp: int | None = None,
) -> CostQuote:
    """The vendor's cost of one event: sum of quantity x price_minor / per_units, unrounded."""
    version = cost_catalog_in_force(at=at, stamp=stamp)
    return _cost_under(version, _cost_prices(version), components, model_class)


@dataclass(frozen=True)
class CostUnits:
    """What one unit of each component costs under the catalog in force (minor units of
    `currency`, unrounded), and the components it does not price."""

    currency: str
    units: dict[str, Decimal]
    missing: dict[str, UnknownCostComponent]


def cost_units(
    *, components: Iterable[str], model_class: str | None, at: datetime, stamp: int | None = None
) -> CostUnits:
    """cost_quote of one unit of each component at once, an unpriced one named, not raised:
    metering prices a batch's events from it, and refuses only the events that use one."""
    version = cost_catalog_in_force(at=at, stamp=stamp)
    prices = _cost_prices(version)
    units: dict[str, Decimal] = {}
    missing: dict[str, UnknownCostComponent] = {}
    for component in components:
        try:
            quote = _cost_under(version, prices, {component: 1}, model_class)
        except UnknownCostComponent as exc:
            missing[component] = exc
        else:
            units[component] = quote.lines[component]
    return CostUnits(currency=version.currency, units=units, missing=missing)


def _cost_under(
    version: CostCatalogVersion,
    prices: dict[tuple[str, str], CostPrice],
    components: Mapping[str, int | Decimal],
    model_class: str | None,
) -> CostQuote:
    lines: dict[str, Decimal] = {}
    for component, quantity in components.items():
        found = prices.get((component, model_class or "")) or prices.get((component, ""))
        if found is None:
            raise UnknownCostComponent(
                f"The cost catalog has no price for '{component}'.", component=component
            )
        lines[component] = Decimal(quantity) * found.price_minor / found.per_units
    return CostQuote(
        total_minor=sum(lines.values(), Decimal(0)),
        currency=version.currency,
        lines=lines,
        version=version,
    )


@dataclass(frozen=True)
class RateCardOverview:
    rate_card: RateCard
    assignment: RateCardAssignment
    version: RateCardVersion
    rates: list[Rate]
    multipliers: dict[str, Decimal]
    scheduled: list[ScheduledVersion]


def rate_card_overview(*, tenant: Tenant, now: datetime) -> RateCardOverview:
    """What GET /api/v1/rate-card shows: the version in force now and what comes next."""
    pricer = tenant_pricer(tenant=tenant)
    terms = pricer.terms_at(now)
    version = terms.version_at(now)
    rates, multipliers = version_rates(version=version)
    return RateCardOverview(
        rate_card=terms.rate_card,
        assignment=terms.assignment or RateCardAssignment(tenant=tenant, rate_card=terms.rate_card),
        version=version,
        rates=rates,
        multipliers=multipliers,
        scheduled=pricer.schedule(now),
    )


# What-if pricing (the vendor console's simulator): the same rule and rounding as price() and
# cost_quote(), under one version named by the caller, a draft included.


@dataclass(frozen=True)
class VersionQuoter:
    """Prices under one version, read once (a draft's rates as they are at that moment)."""

    version: RateCardVersion
    _priced: _PricedVersion = field(repr=False, compare=False)

    def price(self, *, action: str, model_class: str | None, quantity: Decimal | int) -> PriceQuote:
        return _quote(self._priced, action, model_class, quantity)


def version_quoter(*, version: RateCardVersion) -> VersionQuoter:
    return VersionQuoter(version=version, _priced=_priced(version))


@dataclass(frozen=True)
class CatalogQuoter:
    """Costs under one cost catalog version, read once (a draft included)."""

    version: CostCatalogVersion
    _prices: dict[tuple[str, str], CostPrice] = field(repr=False, compare=False)

    def quote(
        self, *, components: Mapping[str, int | Decimal], model_class: str | None
    ) -> CostQuote:
        return _cost_under(self.version, self._prices, components, model_class)


def catalog_quoter(*, version: CostCatalogVersion) -> CatalogQuoter:
    return CatalogQuoter(version=version, _prices=_cost_prices(version))


@dataclass(frozen=True)
class RateChange:
    """One line of two versions' difference: `added`, `removed`, `changed` or `same`."""

    action: str
    model_class: str
    change: str
    before: Rate | None
    after: Rate | None


def version_diff(
    *, before: RateCardVersion | None, after: RateCardVersion
) -> tuple[list[RateChange], list[tuple[str, Decimal | None, Decimal | None]]]:
    """The rates of `after` against `before` (credits per unit or charge policy changed), by
    (action, model class); and the multipliers as (model class, before, after) where they
    differ."""
    old_rates, old_multipliers = version_rates(version=before) if before else ([], {})
    new_rates, new_multipliers = version_rates(version=after)
    old = {(r.action, r.model_class): r for r in old_rates}
    new = {(r.action, r.model_class): r for r in new_rates}
    lines = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if a is None:
            change = "added"
        elif b is None:
            change = "removed"
        elif (a.credits_per_unit, a.charge_on) != (b.credits_per_unit, b.charge_on):
            change = "changed"
        else:
            change = "same"
        lines.append(
            RateChange(action=key[0], model_class=key[1], change=change, before=a, after=b)
        )
    multipliers = [
        (c, old_multipliers.get(c), new_multipliers.get(c))
        for c in sorted(old_multipliers.keys() | new_multipliers.keys())
        if old_multipliers.get(c) != new_multipliers.get(c)
    ]
    return lines, multipliers


def card_assignments_in_force(*, rate_card: RateCard, at: datetime) -> list[RateCardAssignment]:
    """Across tenants (the vendor console's): each tenant's assignment in force at `at` that
    puts it on `rate_card`, by tenant. Tenants with no assignment (the default card) are not
    here."""
    latest = (
        RateCardAssignment.objects.filter(valid_from__lte=at)
        .select_related("tenant", "pinned_version")
        .order_by("tenant_id", "-valid_from")
        .distinct("tenant_id")
    )
    return [a for a in latest if a.rate_card_id == rate_card.pk]
