from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ledger.models import CreditBucket
from ledger.periods import add_months
from ledger.services import ledger_grant, quantize_credits
from tenants.exceptions import CreditlineError
from tenants.models import Tenant


def end_of_this_month(now: datetime) -> datetime:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return add_months(first, 1)


class Command(BaseCommand):
    help = (
        "Grant credits to a tenant (a new bucket). monthly_reset credits expire at --expires-at, "
        "by default at the end of the current calendar month (00:00 UTC on the 1st of the "
        "next); rolling_12m ones 12 months after now; permanent ones never. Re-running with "
        "the same --reference grants nothing more."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--credits", required=True)
        parser.add_argument("--policy", required=True, choices=CreditBucket.Policy.values)
        parser.add_argument(
            "--reference", default=None, help="external reference (default: a new one)"
        )
        parser.add_argument(
            "--expires-at",
            default=None,
            help="ISO 8601 with an offset; monthly_reset default: end of this month (UTC)",
        )
        parser.add_argument(
            "--source", default=CreditBucket.Source.PROMOTION, choices=CreditBucket.Source.values
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant has the slug '{options['tenant']}'.")
        try:
            credits = Decimal(options["credits"])
        except InvalidOperation:
            raise CommandError("--credits must be a number.") from None
        now = timezone.now()
        expires_at = None
        if options["expires_at"]:
            expires_at = parse_datetime(options["expires_at"])
            if expires_at is None or timezone.is_naive(expires_at):
                raise CommandError("--expires-at must be ISO 8601 with a UTC offset.")
        elif options["policy"] == CreditBucket.Policy.MONTHLY_RESET:
            expires_at = end_of_this_month(now)
        reference = options["reference"] or f"cli:{now.isoformat()}"
        try:
            result = ledger_grant(
                tenant=tenant,
                credits=credits,
                policy=options["policy"],
                source=options["source"],
                external_reference=reference,
                expires_at=expires_at,
                source_type="cli",
            )
        except CreditlineError as error:
            raise CommandError(error.message) from None
        bucket = result.bucket
        verb = "granted" if result.created else "already granted (same reference)"
        expiry = bucket.expires_at.isoformat() if bucket.expires_at else "never"
        granted = quantize_credits(bucket.granted)
        self.stdout.write(
            f"{verb}: {granted} credits to {tenant.slug}, {bucket.policy}, "
            f"expires {expiry}, bucket {bucket.pk}, reference {bucket.external_reference}; "
            f"available now {result.available_after}"
        )
