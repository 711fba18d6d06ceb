from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from insights.models import ReconciliationRun
from insights.reconcile import reconciliation_run


class Command(BaseCommand):
    help = (
        "Check, per currency, that the money received (top-ups, invoices, less refunds) equals "
        "the revenue recognised + breakage + the paid value of credits still unspent, to the "
        "cent, and that the console's rollups agree with the ledger (credits to 0.0001). "
        "Prints both sides; exits 1 on any difference (each also logged at ERROR). The run is "
        "stored: the console's reconciliation page shows the last one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-update",
            action="store_true",
            help="Compare the rollups as they are instead of bringing them up to date first.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        run, result = reconciliation_run(
            trigger=ReconciliationRun.Trigger.COMMAND, update_rollups=not options["no_update"]
        )
        if result is None:
            raise CommandError(f"{run.error} See the log.")
        for b in result.currencies:
            self.stdout.write(
                f"{b.currency}: received {b.received:.2f} - refunded {b.refunded:.2f} = "
                f"{b.left:.2f}; revenue {b.revenue:.2f} + overdraft paid {b.overdraft_paid:.2f}"
                f" - refunds of spent credits {b.refunded_spent:.2f} + breakage "
                f"{b.breakage:.2f} + unspent {b.unspent:.2f} + written off "
                f"{b.written_off:.2f} - receivable {b.receivable:.2f} = {b.right:.2f} "
                "(minor units)"
            )
        for problem in result.problems:
            self.stderr.write(problem)
        if not result.ok:
            raise CommandError(f"reconciliation found {len(result.problems)} difference(s).")
        self.stdout.write("reconciled: no differences")
