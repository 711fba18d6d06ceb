from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ledger.models import CreditBucket, CreditHold
from ledger.selectors import ledger_verify


class Command(BaseCommand):
    help = (
        "Recompute every bucket from its entries and every hold from its debits; print each "
        "difference and exit 1 if there is any."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        mismatches = ledger_verify()
        for m in mismatches:
            self.stderr.write(
                f"tenant {m.tenant_id} {m.what} {m.id}: cached {m.cached}, entries say {m.computed}"
            )
        if mismatches:
            raise CommandError(f"ledger verify found {len(mismatches)} difference(s).")
        self.stdout.write(
            f"ledger verified: {CreditBucket.objects.count()} buckets, "
            f"{CreditHold.objects.count()} holds, no differences"
        )
