"""The only writer of credit buckets, holds, transactions and entries.

Every function here takes the tenant's account lock first (ledger/locks.py), runs inside
`transaction.atomic()` (so a caller may wrap several moves in its own durable transaction),
and announces `BalanceChanged` after commit.

The package: `_book` (the tenant's account and totals under the lock, results, the one insert
of transactions and entries), `debits` (the Python side of the SQL debit, ledger/sql/, the one
implementation of the consumption order; negative adjustments use it too), `grants`, `expiry`
(the set-based sweep), `reversals` (refunds and adjustments), `holds`, `account` (its
settings). Every move keeps the account's totals (per policy, overdraft used, reserved) current
in its own transaction. Import from `ledger.services` itself.

Decisions (issue 3 asked for them; tests/ledger/test_worked_examples.py shows each):
- A refund of a debit goes back to the buckets it came from, last drawn first. A share whose
  bucket has expired (swept or not) lands in a new permanent `refund` bucket with that
  bucket's cost basis, so it is spendable now and revenue reports stay true; it is never put
  back into an expired bucket, and never reported-and-dropped.
- A share lent by the overdraft repays what is still owed on it; what a grant already settled
  becomes a free permanent refund bucket (the overdraft bucket never holds positive credit).
- Expiry entries carry the balance as it already was: expired credits leave the available
  balance at `expires_at`, whether or not the sweep has run; the sweep only writes it down.
- A hold reserves an amount of the balance, not particular buckets. If credits under it
  expire, `available` may go below zero (reserved > spendable) and the hold's debits are paid
  only while the buckets cover them; other debits can never take reserved credits.
- Grants and positive adjustments repay an outstanding overdraft first (settlement entries,
  which leave the available balance unchanged).
- Back-dated moves (`now=` in the past) are dated as asked, but spendability is judged by the
  clock; the sweep never expires a bucket before its time.
- A replayed debit returns its original parts and the balance right after it.
- A refunded or lost-disputed purchase gives back what is left of its grant's bucket
  (`ledger_grant_revoke`: one reversal naming the grant's transaction); what was spent stays
  spent, and the caller records it as debt.
- In `ledger_debit_many`, insufficient credits are per charge (in its slot); an idempotency
  conflict or a hold that is not open raises and writes nothing for the whole batch.
"""

from ledger.services._book import (
    COST_BASIS_QUANTUM,
    CREDIT_QUANTUM,
    DebitPart,
    DebitRequest,
    DebitResult,
    GrantResult,
    quantize_credits,
)
from ledger.services.account import credit_account_update
from ledger.services.debits import (
    DebitStatement,
    ledger_debit,
    ledger_debit_many,
    ledger_debit_statement,
)
from ledger.services.expiry import ledger_expire_due
from ledger.services.grants import ledger_grant
from ledger.services.holds import ledger_hold_place, ledger_hold_release
from ledger.services.reversals import ledger_adjust, ledger_reverse
from ledger.services.revocations import Revocation, ledger_grant_revoke

__all__ = [
    "COST_BASIS_QUANTUM",
    "CREDIT_QUANTUM",
    "DebitPart",
    "DebitRequest",
    "DebitResult",
    "DebitStatement",
    "GrantResult",
    "Revocation",
    "credit_account_update",
    "ledger_adjust",
    "ledger_debit",
    "ledger_debit_many",
    "ledger_debit_statement",
    "ledger_expire_due",
    "ledger_grant",
    "ledger_grant_revoke",
    "ledger_hold_place",
    "ledger_hold_release",
    "ledger_reverse",
    "quantize_credits",
]
