from typing import Any

from django.core.management.base import BaseCommand

from insights.rollup import insights_rollup_backfill
from insights.selectors import rollup_as_of


class Command(BaseCommand):
    help = (
        "Rebuild the console's money rollups (margin per day, money moved per day) from every "
        "usage event and ledger entry, in one transaction (the periodic job carries on from "
        "where it ends)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = insights_rollup_backfill()
        marks = ", ".join(f"{name} as of {at}" for name, at in rollup_as_of().items())
        self.stdout.write(f"console rollups rebuilt: {rows} rows ({marks})")
