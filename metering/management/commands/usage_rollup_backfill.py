from typing import Any

from django.core.management.base import BaseCommand

from metering.rollup import usage_rollup_backfill
from metering.rollup_selectors import usage_rollup_as_of


class Command(BaseCommand):
    help = (
        "Rebuild the daily usage rollup from every usage event and refund, in one transaction "
        "(the periodic job carries on from where it ends)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = usage_rollup_backfill()
        self.stdout.write(
            f"usage rollup rebuilt: {rows} rows, complete as of {usage_rollup_as_of()}"
        )
