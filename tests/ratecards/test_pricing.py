"""price(): the version in force at the event's time, the pricing rule, rounding, errors."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from ratecards.exceptions import RateCardNotFound, UnknownAction, UnknownModelClass
from ratecards.models import RateCard
from ratecards.selectors import estimate_credits, price, tenant_pricer, version_in_force
from ratecards.services import ratecard_assign, ratecard_create
from tenants.api.errors import api_exception_handler
from tenants.models import Tenant
from tests.ratecards.factories import publish_version

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)


def _credits(tenant: Tenant, action: str, model_class: str | None = "", quantity=1, at=NOW):
    return price(tenant=tenant, action=action, model_class=model_class, quantity=quantity, at=at)


def _body(exc: Exception) -> tuple[int, dict]:
    response = api_exception_handler(exc, {})
    assert response is not None
    return response.status_code, response.data


def test_an_event_is_priced_by_the_version_in_force_at_its_time(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    v2 = publish_version(card, {"chat": "2"}, effective_from=FEB_1)

    before = _credits(tenant, "chat", quantity=10, at=FEB_1 - timedelta(microseconds=1))
    after = _credits(tenant, "chat", quantity=10, at=FEB_1)

    assert (before.version, before.credits) == (v1, Decimal("10.0000"))
    assert (after.version, after.credits) == (v2, Decimal("20.0000"))


def test_follow_with_notice_keeps_the_tenant_on_the_old_version_for_the_notice_period(
    frozen_time: time_machine.Traveller, tenant: Tenant, other_tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)
    frozen_time.shift(timedelta(days=1))
    v2 = publish_version(card, {"chat": "2"})  # effective at once, published Jan 16 12:00
    notice_ends = datetime(2026, 2, 15, 12, tzinfo=UTC)

    # The card's first version needs no notice: it replaces nothing.
    assert version_in_force(tenant=tenant, at=NOW) == v1

    assert version_in_force(tenant=tenant, at=notice_ends - timedelta(seconds=1)) == v1
    assert version_in_force(tenant=tenant, at=notice_ends) == v2
    # A tenant without an assignment follows the default card with no notice.
    assert version_in_force(tenant=other_tenant, at=datetime(2026, 1, 16, 12, tzinfo=UTC)) == v2


def test_pinned_until_a_date_then_follows(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    v2 = publish_version(card, {"chat": "2"})
    march = datetime(2026, 3, 1, tzinfo=UTC)
    ratecard_assign(
        tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1, pinned_until=march
    )

    assert _credits(tenant, "chat", at=NOW).version == v1
    assert _credits(tenant, "chat", at=march - timedelta(seconds=1)).credits == Decimal("1.0000")
    assert _credits(tenant, "chat", at=march).version == v2


def test_pinned_without_an_end_date_stays_pinned(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    v1 = publish_version(card, {"chat": "1"})
    publish_version(card, {"chat": "2"})
    ratecard_assign(tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1)

    assert version_in_force(tenant=tenant, at=datetime(2030, 1, 1, tzinfo=UTC)) == v1


def test_an_assigned_card_is_used_instead_of_the_default(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})
    enterprise = ratecard_create(name="Enterprise", slug="enterprise")
    e1 = publish_version(enterprise, {"chat": "0.5"})
    ratecard_assign(tenant=tenant, rate_card=enterprise, mode="follow")

    quote = _credits(tenant, "chat", quantity=3)

    assert (quote.version, quote.credits) == (e1, Decimal("1.5000"))


def test_model_class_multiplier_turbo_costs_six_times(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1", "doc_search": "3"}, multipliers={"turbo": "6"})

    chat = _credits(tenant, "chat", "turbo")
    docs = _credits(tenant, "doc_search", "turbo", quantity=2)

    assert (chat.credits, chat.credits_per_unit, chat.multiplier) == (
        Decimal("6.0000"),
        Decimal("6.00000000"),
        Decimal("6.0000"),
    )
    assert chat.rate.model_class == ""
    assert docs.credits == Decimal("36.0000")


def test_an_exact_rate_beats_the_multiplier(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1", ("chat", "turbo"): "4"}, multipliers={"turbo": "6"})

    quote = _credits(tenant, "chat", "turbo")

    assert (quote.credits, quote.multiplier, quote.rate.model_class) == (
        Decimal("4.0000"),
        Decimal(1),
        "turbo",
    )


@pytest.mark.parametrize("model_class", ["", None])
def test_no_model_class_takes_the_default_rate(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard, model_class: str | None
) -> None:
    publish_version(card, {"chat": "1", ("chat", "turbo"): "4"}, multipliers={"turbo": "6"})

    assert _credits(tenant, "chat", model_class).credits == Decimal("1.0000")


def test_a_free_action_costs_zero(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"onboarding_tip": "0"}, multipliers={"turbo": "6"})

    assert _credits(tenant, "onboarding_tip", quantity=1000).credits == Decimal("0.0000")
    assert _credits(tenant, "onboarding_tip", "turbo").credits == Decimal("0.0000")


@pytest.mark.parametrize(
    ("rate", "multiplier", "quantity", "credits"),
    [
        ("0.0001", "1.5", 1, "0.0002"),  # 0.00015 rounds half up
        ("0.0003", "1", Decimal("0.5"), "0.0002"),  # 0.00015 again, via a fractional quantity
        ("0.0001", "1.4", 1, "0.0001"),  # 0.00014 rounds down
        ("0.0001", "2.5", Decimal("0.3"), "0.0001"),  # 0.000075 rounds up to 0.0001
        ("0.3333", "1", 3, "0.9999"),
    ],
)
def test_credits_are_quantized_to_0_0001_round_half_up(
    frozen_time: time_machine.Traveller,
    tenant: Tenant,
    card: RateCard,
    rate: str,
    multiplier: str,
    quantity: Decimal | int,
    credits: str,
) -> None:
    publish_version(card, {"chat": rate}, multipliers={"m": multiplier})

    quote = _credits(tenant, "chat", "m" if multiplier != "1" else "", quantity=quantity)

    assert quote.credits == Decimal(credits)
    assert quote.credits.as_tuple().exponent == -4


def test_charge_on_comes_from_the_rate(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"resolution": "50"}, charge_on={"resolution": "success"})

    assert _credits(tenant, "resolution").charge_on == "success"


def test_unknown_action_is_a_422_naming_the_field(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"})

    with pytest.raises(UnknownAction) as caught:
        _credits(tenant, "teleport")

    assert _body(caught.value) == (
        422,
        {
            "error": {
                "code": "unknown_action",
                "message": "The rate card has no action 'teleport'.",
                "fields": {"action": ["The rate card has no action 'teleport'."]},
                "field": "action",
                "action": "teleport",
            }
        },
    )


def test_unknown_model_class_is_a_422_naming_the_field(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1", ("vision", "large"): "5"}, multipliers={"turbo": "6"})

    with pytest.raises(UnknownModelClass) as caught:
        _credits(tenant, "chat", "quantum")
    with pytest.raises(UnknownModelClass) as no_default:
        _credits(tenant, "vision", "")

    assert _body(caught.value) == (
        422,
        {
            "error": {
                "code": "unknown_model_class",
                "message": "The rate card has no model class 'quantum'.",
                "fields": {"model_class": ["The rate card has no model class 'quantum'."]},
                "field": "model_class",
                "model_class": "quantum",
            }
        },
    )
    assert no_default.value.message == "The action 'vision' has no rate for the model class ''."


def test_no_version_in_force_is_no_rate_card(
    frozen_time: time_machine.Traveller, tenant: Tenant, card: RateCard
) -> None:
    publish_version(card, {"chat": "1"}, effective_from=FEB_1)

    with pytest.raises(RateCardNotFound) as caught:
        _credits(tenant, "chat", at=NOW)

    assert _body(caught.value) == (
        422,
        {
            "error": {
                "code": "no_rate_card",
                "message": "No rate card version is in force for this tenant.",
            }
        },
    )


def test_no_default_card_is_no_rate_card(tenant: Tenant) -> None:
    with pytest.raises(RateCardNotFound):
        _credits(tenant, "chat")


@pytest.mark.parametrize("mode", ["unassigned", "follow", "pinned"])
def test_a_warm_price_costs_at_most_two_small_queries(
    frozen_time: time_machine.Traveller,
    tenant: Tenant,
    card: RateCard,
    django_assert_max_num_queries,
    mode: str,
) -> None:
    v1 = publish_version(card, {"chat": "1"}, multipliers={"turbo": "6"})
    if mode == "follow":
        ratecard_assign(tenant=tenant, rate_card=card, mode="follow", notice_days=30)
    elif mode == "pinned":
        ratecard_assign(tenant=tenant, rate_card=card, mode="pinned", pinned_version=v1)
    _credits(tenant, "chat")  # warms the version cache

    with django_assert_max_num_queries(2):
        assert _credits(tenant, "chat", "turbo").credits == Decimal("6.0000")


def test_estimate_credits_sums_monthly_counts(
    frozen_time: time_machine.Traveller, card: RateCard
) -> None:
    publish_version(card, {"chat": "1", "web_research": "10"}, multipliers={"turbo": "6"})

    total = estimate_credits(
        tenant_or_none=None,
        counts=[("chat", "", 300), ("chat", "turbo", 10), ("web_research", None, 12)],
        at=NOW,
    )

    assert total == Decimal("480.0000")


def test_a_tenant_pricer_prices_a_batch_without_further_queries(
    frozen_time: time_machine.Traveller,
    tenant: Tenant,
    card: RateCard,
    django_assert_num_queries,
) -> None:
    v1 = publish_version(card, {"chat": "1"}, multipliers={"turbo": "6"})
    v2 = publish_version(card, {"chat": "2"}, multipliers={"turbo": "6"}, effective_from=FEB_1)
    pricer = tenant_pricer(tenant=tenant)
    pricer.price(action="chat", model_class="", quantity=1, at=NOW)  # warms both versions
    pricer.price(action="chat", model_class="", quantity=1, at=FEB_1)

    with django_assert_num_queries(0):
        quotes = [
            pricer.price(action="chat", model_class="turbo", quantity=1, at=at)
            for at in (NOW, FEB_1 - timedelta(seconds=1), FEB_1, FEB_1 + timedelta(days=9))
        ]

    assert [(q.version, q.credits) for q in quotes] == [
        (v1, Decimal("6.0000")),
        (v1, Decimal("6.0000")),
        (v2, Decimal("12.0000")),
        (v2, Decimal("12.0000")),
    ]
