"""Migration 0007 fills `topped_up_to` from each tenant's history exactly as the services keep it
from then on: the same histories, made by the services, give the same values once the column
is dropped and filled again by the migration."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.models import AlertSettings
from billing.selectors import alert_thresholds_get
from ledger.exceptions import InsufficientCredits
from ledger.models import CreditAccount, CreditBucket, LedgerTransaction
from ledger.services import (
    credit_account_update,
    ledger_adjust,
    ledger_debit,
    ledger_grant,
    ledger_hold_place,
    ledger_hold_release,
    ledger_reverse,
)
from metering.models import WorkflowSettings
from metering.soft_cap import soft_cap_get
from tenants.models import Tenant
from tenants.services import tenant_create

BEFORE = [("ledger", "0006_widen_transaction_key")]
P = CreditBucket.Policy
S = CreditBucket.Source
D = Decimal


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


def _grant(tenant: Tenant, reference: str, credits: int, policy: str = P.PERMANENT) -> None:
    expires_at = datetime(2026, 2, 1, tzinfo=UTC) if policy == P.MONTHLY_RESET else None
    source = S.SUBSCRIPTION if policy == P.MONTHLY_RESET else S.TOPUP
    ledger_grant(
        tenant=tenant,
        credits=credits,
        policy=policy,
        source=source,
        external_reference=reference,
        expires_at=expires_at,
    )


def _spend(tenant: Tenant, amount: int, key: str) -> LedgerTransaction:
    return ledger_debit(tenant=tenant, amount=D(amount), idempotency_key=key).transaction


def _histories(clock: time_machine.Traveller) -> dict[str, Tenant]:
    """One tenant per kind of history; returns them by name."""
    made = {
        name: tenant_create(name=name, slug=name)
        for name in ("packs", "refunds", "adjusted", "overdrawn", "expired", "settings", "none")
    }
    admin = User.objects.create_user("admin")
    for n in range(3):  # three packs bought and spent: topped up to the last one
        _grant(made["packs"], f"p{n}", 100)
        _spend(made["packs"], 100 if n < 2 else 30, f"d{n}")
    refunds = made["refunds"]  # a refund raising it above the last grant, another under it
    _grant(refunds, "p1", 100)
    first = _spend(refunds, 60, "d1")
    _grant(refunds, "p2", 100)
    second = _spend(refunds, 130, "d2")
    ledger_reverse(tenant=refunds, debit=second, idempotency_key="r1", amount=D(30))
    ledger_reverse(tenant=refunds, debit=second, idempotency_key="r2")
    ledger_reverse(tenant=refunds, debit=first, idempotency_key="r3")
    adjusted = made["adjusted"]  # adjustments up and down after a grant, and a hold
    _grant(adjusted, "s1", 80, P.MONTHLY_RESET)
    _spend(adjusted, 50, "d1")
    ledger_adjust(tenant=adjusted, credits="90", reason="x", actor=admin, idempotency_key="a1")
    ledger_adjust(tenant=adjusted, credits="-25", reason="x", actor=admin, idempotency_key="a2")
    hold = ledger_hold_place(tenant=adjusted, amount=D(40), reference="run-1")
    ledger_hold_release(tenant=adjusted, hold=hold)
    overdrawn = made["overdrawn"]  # a grant that repaid only part of the overdraft: 0
    credit_account_update(tenant=overdrawn, overdraft_limit=D(300))
    _spend(overdrawn, 250, "d1")
    _grant(overdrawn, "p1", 100)
    expired = made["expired"]  # a grant already expired when made changes nothing
    _grant(expired, "p1", 100)
    _spend(expired, 70, "d1")
    ledger_grant(
        tenant=expired,
        credits=500,
        policy=P.MONTHLY_RESET,
        source=S.SUBSCRIPTION,
        external_reference="late",
        granted_at=datetime(2025, 12, 1, tzinfo=UTC),
        expires_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    credit_account_update(tenant=made["settings"], overdraft_limit=D(10))  # an account, no grant
    clock.shift(timedelta(days=30))  # past the subscription's expiry: the sweep has not run
    return made


@pytest.mark.django_db(transaction=True)
def test_topped_up_to_is_filled_from_history_as_the_services_keep_it() -> None:
    with time_machine.travel(datetime(2026, 1, 15, 12, tzinfo=UTC), tick=False) as clock:
        made = _histories(clock)
    kept = dict(CreditAccount.objects.values_list("tenant__slug", "topped_up_to"))
    assert kept == {
        "packs": D(100),
        "refunds": D(200),
        "adjusted": D(120),
        "overdrawn": D(0),
        "expired": D(100),
        "settings": D(0),
    }
    try:
        _migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM ledger_creditaccount")
            assert cursor.fetchone()[0] == 6
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    filled = dict(CreditAccount.objects.values_list("tenant__slug", "topped_up_to"))
    assert filled == kept
    assert not CreditAccount.objects.filter(tenant=made["none"]).exists()


MOVE_BEFORE = [
    ("ledger", "0007_topped_up_to"),
    ("billing", "0005_existing_api_keys_keep_billing"),
    ("metering", "0005_leaner_event_indexes"),
]


@pytest.mark.django_db(transaction=True)
def test_the_settings_leave_the_ledger_with_their_values() -> None:
    made = {name: tenant_create(name=name, slug=name) for name in "abcde"}
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(MOVE_BEFORE)
        executor.loader.build_graph()
        old = executor.loader.project_state(MOVE_BEFORE).apps.get_model("ledger", "CreditAccount")
        for name, thresholds, soft_cap in [
            ("a", [50, 5], D("150")),
            ("b", [20, 10], None),
            ("c", [], D("0")),
            ("d", [30], D("-5")),  # only code could set a negative one
        ]:
            old.objects.create(
                tenant_id=made[name].pk, alert_thresholds=thresholds, soft_cap=soft_cap
            )
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert dict(AlertSettings.objects.values_list("tenant__slug", "thresholds")) == {
        "a": [50, 5],
        "b": [20, 10],
        "c": [],
        "d": [30],
    }
    assert dict(WorkflowSettings.objects.values_list("tenant__slug", "soft_cap")) == {
        "a": D("150"),
        "c": D("0"),
        "d": D("0"),
    }
    # e had no account: the defaults; a's own cap, b's default (10% of nothing topped up)
    assert alert_thresholds_get(tenant_id=made["e"].pk) == [20, 10]
    assert [soft_cap_get(tenant=made[n]) for n in "abe"] == [D("150"), D("0"), D("0")]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'ledger_creditaccount' AND column_name = ANY(%s)",
            [["alert_thresholds", "soft_cap"]],
        )
        assert cursor.fetchall() == []
    # The debit's function no longer names the columns: a first debit of a tenant without an
    # account is refused for want of credits, not for a missing column.
    with pytest.raises(InsufficientCredits):
        ledger_debit(tenant=made["e"], amount=D(1), idempotency_key="first")
