"""Celery tasks of the vendor console: each calls one service."""

from celery import shared_task

from insights.reconcile import reconcile
from insights.rollup import insights_rollup_update
from insights.simulator import simulation_run


@shared_task(name="insights.rollup_update")
def insights_rollup_update_task() -> dict[str, int | None]:
    """Every minute: the console's money rollups (insights/rollup.py), exactly once however
    often and however many copies run."""
    return insights_rollup_update()


@shared_task(name="insights.reconcile")
def insights_reconcile_task() -> bool:
    """Hourly: the rollups brought up to date, then reconciled with the ledger and the money
    received (insights/reconcile.py); every difference is logged at ERROR."""
    insights_rollup_update()
    return reconcile().ok


@shared_task(name="insights.simulation_run")
def insights_simulation_run_task(simulation_id: int) -> str:
    """A rate-card simulation too large for a request (insights/simulator.py)."""
    return simulation_run(simulation_id=simulation_id)
