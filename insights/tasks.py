"""Celery tasks of the vendor console: each calls one service."""

from celery import shared_task
from django.utils import timezone

from insights.models import ReconciliationRun
from insights.reconcile import reconciliation_run
from insights.rollup import insights_rollup_update
from insights.simulator import simulation_run
from insights.trap import contract_traps_store


@shared_task(name="insights.rollup_update")
def insights_rollup_update_task() -> dict[str, int | None]:
    """Every minute: the console's money rollups (insights/rollup.py), exactly once however
    often and however many copies run."""
    return insights_rollup_update()


@shared_task(name="insights.reconcile")
def insights_reconcile_task(run_id: int | None = None) -> bool:
    """Hourly (and for a staff user's request, `run_id`): the rollups brought up to date, then
    reconciled with the ledger and the money received (insights/reconcile.py) and the run
    stored; every difference is logged at ERROR. True when nothing differs."""
    trigger = (
        ReconciliationRun.Trigger.SCHEDULE if run_id is None else ReconciliationRun.Trigger.STAFF
    )
    run, _ = reconciliation_run(trigger=trigger, run_id=run_id)
    return run.ok


@shared_task(name="insights.simulation_run")
def insights_simulation_run_task(simulation_id: int) -> str:
    """A rate-card simulation too large for a request (insights/simulator.py)."""
    return simulation_run(simulation_id=simulation_id)


@shared_task(name="insights.contract_traps_store")
def insights_contract_traps_store_task() -> int:
    """Hourly: every pinned contract's rate-card trap figured and stored for the contracts
    page (insights/trap.py)."""
    return contract_traps_store(now=timezone.now())
