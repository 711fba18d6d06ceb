"""A published version and its rates never change: the ORM refuses, and so does PostgreSQL."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import DatabaseError, connection, transaction

from ratecards.exceptions import PublishedVersionImmutable
from ratecards.models import ModelClassMultiplier, Rate, RateCard
from ratecards.services import (
    cost_catalog_version_create_draft,
    cost_catalog_version_publish,
    cost_price_set,
    multiplier_set,
    rate_delete,
    rate_set,
    ratecard_version_create_draft,
)
from tests.ratecards.factories import publish_version

pytestmark = pytest.mark.django_db


def _sql(statement: str, *params: int) -> None:
    # Its own savepoint, so the refused statement does not poison the test's transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.fixture
def published(frozen_time: time_machine.Traveller, card: RateCard):
    return publish_version(card, {"chat": "1"}, multipliers={"turbo": "6"})


def test_raw_sql_cannot_change_delete_or_add_rates_of_a_published_version(published) -> None:
    rate = published.rates.get()

    with pytest.raises(DatabaseError, match="belongs to a published version"):
        _sql("UPDATE ratecards_rate SET credits_per_unit = 5 WHERE id = %s", rate.pk)
    with pytest.raises(DatabaseError, match="belongs to a published version"):
        _sql("DELETE FROM ratecards_rate WHERE id = %s", rate.pk)
    with pytest.raises(DatabaseError, match="may not be added to published version"):
        _sql(
            "INSERT INTO ratecards_rate (version_id, action, model_class, credits_per_unit, "
            "charge_on) VALUES (%s, 'doc_search', '', 3, 'always')",
            published.pk,
        )
    with pytest.raises(DatabaseError, match="belongs to a published version"):
        _sql(
            "UPDATE ratecards_modelclassmultiplier SET multiplier = 1 WHERE version_id = %s",
            published.pk,
        )

    rate.refresh_from_db()
    assert rate.credits_per_unit == Decimal("1.0000")


def test_raw_sql_cannot_change_or_delete_a_published_version(published) -> None:
    with pytest.raises(DatabaseError, match="is published and immutable"):
        _sql("UPDATE ratecards_ratecardversion SET notes = 'x' WHERE id = %s", published.pk)
    with pytest.raises(DatabaseError, match="is published and immutable"):
        _sql("UPDATE ratecards_ratecardversion SET status = 'draft' WHERE id = %s", published.pk)
    with pytest.raises(DatabaseError, match="is published and immutable"):
        _sql("DELETE FROM ratecards_ratecardversion WHERE id = %s", published.pk)


def test_a_queryset_update_is_refused_by_the_trigger(published) -> None:
    with pytest.raises(DatabaseError), transaction.atomic():
        Rate.objects.filter(version=published).update(credits_per_unit=9)


def test_drafts_stay_editable_by_sql(published) -> None:
    draft = ratecard_version_create_draft(rate_card=published.rate_card)

    _sql("UPDATE ratecards_rate SET credits_per_unit = 2 WHERE version_id = %s", draft.pk)
    _sql("UPDATE ratecards_ratecardversion SET notes = 'ok' WHERE id = %s", draft.pk)

    assert draft.rates.get().credits_per_unit == Decimal("2.0000")


def test_the_orm_refuses_too(published) -> None:
    rate = published.rates.get()
    multiplier = published.multipliers.get()

    rate.credits_per_unit = Decimal(5)
    with pytest.raises(PublishedVersionImmutable):
        rate.save()
    with pytest.raises(PublishedVersionImmutable):
        rate.delete()
    with pytest.raises(PublishedVersionImmutable):
        multiplier.delete()
    with pytest.raises(PublishedVersionImmutable):
        Rate.objects.create(version=published, action="doc_search", credits_per_unit=3)
    with pytest.raises(PublishedVersionImmutable):
        ModelClassMultiplier.objects.create(version=published, model_class="mini", multiplier=1)
    published.notes = "changed"
    with pytest.raises(PublishedVersionImmutable):
        published.save()
    with pytest.raises(PublishedVersionImmutable):
        published.delete()


def test_a_rate_cannot_be_moved_out_of_a_published_version(published) -> None:
    draft = ratecard_version_create_draft(rate_card=published.rate_card)
    rate = published.rates.get()
    rate.version = draft

    with pytest.raises(PublishedVersionImmutable):
        rate.save()


def test_services_refuse_to_edit_a_published_version(published) -> None:
    with pytest.raises(PublishedVersionImmutable) as caught:
        rate_set(version=published, action="chat", credits_per_unit="2")
    with pytest.raises(PublishedVersionImmutable):
        rate_delete(version=published, action="chat")
    with pytest.raises(PublishedVersionImmutable):
        multiplier_set(version=published, model_class="turbo", multiplier="7")

    assert (caught.value.status_code, caught.value.code, caught.value.message) == (
        409,
        "version_published",
        "standard v1 (published) is published and cannot be changed.",
    )


def test_a_published_cost_catalog_is_frozen_too(frozen_time: time_machine.Traveller) -> None:
    catalog = cost_catalog_version_create_draft(currency="USD")
    price = cost_price_set(version=catalog, component="tool_calls", price_minor=8)
    cost_catalog_version_publish(version=catalog, effective_from=datetime(2026, 2, 1, tzinfo=UTC))

    with pytest.raises(DatabaseError, match="belongs to a published version"):
        _sql("UPDATE ratecards_costprice SET price_minor = 1 WHERE id = %s", price.pk)
    with pytest.raises(DatabaseError, match="is published and immutable"):
        _sql("UPDATE ratecards_costcatalogversion SET currency = 'EUR' WHERE id = %s", catalog.pk)
    with pytest.raises(PublishedVersionImmutable):
        cost_price_set(version=catalog, component="tool_calls", price_minor=9)
