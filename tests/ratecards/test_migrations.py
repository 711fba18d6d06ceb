"""Migration 0003 keeps every existing assignment, as the first entry of its tenant's history."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from tenants.models import Tenant

BEFORE = [("ratecards", "0002_immutability_triggers")]
AFTER = [("ratecards", "0003_assignment_history")]
CREATED = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)


def _migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor


@pytest.mark.django_db(transaction=True)
def test_existing_assignments_become_valid_from_their_creation(tenant: Tenant) -> None:
    old = _migrate(BEFORE).loader.project_state(BEFORE).apps
    card = old.get_model("ratecards", "RateCard").objects.create(name="Standard", slug="standard")
    assignment = old.get_model("ratecards", "RateCardAssignment")
    row = assignment.objects.create(tenant_id=tenant.pk, rate_card_id=card.pk, notice_days=30)
    assignment.objects.filter(pk=row.pk).update(created_at=CREATED)

    try:
        new = _migrate(AFTER).loader.project_state(AFTER).apps
        history = new.get_model("ratecards", "RateCardAssignment")

        migrated = history.objects.get()
        assert (migrated.pk, migrated.valid_from, migrated.notice_days) == (row.pk, CREATED, 30)
        # One row per (tenant, valid_from) now, no longer one per tenant.
        history.objects.create(
            tenant_id=tenant.pk, rate_card_id=card.pk, valid_from=datetime(2026, 1, 1, tzinfo=UTC)
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            history.objects.create(tenant_id=tenant.pk, rate_card_id=card.pk, valid_from=CREATED)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
