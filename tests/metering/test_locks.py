"""metering.locks: the only select_for_update in metering, account row first, then the run."""

import ast
import threading
from pathlib import Path

import pytest
from django.db import OperationalError, connection, transaction

from ledger.models import CreditAccount
from metering.locks import run_lock, suspended_runs_lock
from metering.models import WorkflowRun
from tenants.models import Tenant
from tests.metering.factories import fund

METERING = Path(__file__).resolve().parents[2] / "metering"


def test_only_metering_locks_calls_select_for_update() -> None:
    callers = sorted(
        str(path.relative_to(METERING.parent))
        for path in METERING.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "select_for_update"
    )
    assert set(callers) == {"metering/locks.py"}


def _run(tenant: Tenant, external_id: str, state: str = WorkflowRun.State.RUNNING) -> WorkflowRun:
    return WorkflowRun.objects.create(
        tenant=tenant, external_id=external_id, state=state, last_activity_at="2026-03-01T09:00Z"
    )


def _locked_elsewhere(tenant: Tenant, run: WorkflowRun) -> tuple[bool, bool]:
    """From another connection: is the account row locked, is the run row locked?"""
    found: list[bool] = []

    def probe() -> None:
        try:
            for model, pk in ((CreditAccount, None), (WorkflowRun, run.pk)):
                query = model.objects.select_for_update(nowait=True)
                with transaction.atomic():
                    try:
                        if pk is None:
                            list(query.filter(tenant=tenant))
                        else:
                            list(query.filter(pk=pk))
                    except OperationalError:
                        found.append(True)
                    else:
                        found.append(False)
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(timeout=10)
    return found[0], found[1]


@pytest.mark.django_db(transaction=True)
def test_run_lock_holds_the_account_row_and_the_run(tenant: Tenant) -> None:
    fund(tenant, 10)
    run = _run(tenant, "job-1")
    assert _locked_elsewhere(tenant, run) == (False, False)

    with transaction.atomic():
        locked = run_lock(tenant=tenant, run_id=run.pk)
        assert locked.pk == run.pk
        assert _locked_elsewhere(tenant, run) == (True, True)

    assert _locked_elsewhere(tenant, run) == (False, False)


@pytest.mark.django_db(transaction=True)
def test_suspended_runs_lock_takes_the_waiting_runs_by_pk(tenant: Tenant) -> None:
    fund(tenant, 10)
    running = _run(tenant, "job-1")
    older = _run(tenant, "job-b", WorkflowRun.State.SUSPENDED)
    newer = _run(tenant, "job-a", WorkflowRun.State.SUSPENDED)

    with transaction.atomic():
        runs = suspended_runs_lock(tenant=tenant)
        assert [r.pk for r in runs] == [older.pk, newer.pk]
        assert _locked_elsewhere(tenant, older) == (True, True)
        assert _locked_elsewhere(tenant, newer) == (True, True)
        assert _locked_elsewhere(tenant, running) == (True, False)


@pytest.mark.django_db
def test_run_lock_does_not_find_another_tenants_run(tenant: Tenant, other_tenant: Tenant) -> None:
    run = _run(other_tenant, "theirs")

    with pytest.raises(WorkflowRun.DoesNotExist):
        run_lock(tenant=tenant, run_id=run.pk)
