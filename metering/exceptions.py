"""Typed errors of metering; the API renders them as DESIGN.md's error body."""

from typing import Any

from tenants.exceptions import CreditlineError


class IdempotencyConflict(CreditlineError):
    status_code = 409
    code = "idempotency_conflict"
    message = "This idempotency key was already used for a different usage event."


class InvalidUsage(CreditlineError):
    """One field of a usage event is wrong. Rendered like a DRF validation error (422
    `invalid_input` with `fields`), so the single and the batch endpoint say the same thing."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, field: str, message: str, **details: Any) -> None:
        super().__init__(f"{field}: {message}", fields={field: [message]}, **details)
        self.field = field


class UnstorableValue(CreditlineError):
    """The database refused a value of the event that the validation let through (a gap in it,
    logged): nothing of the event was written."""

    status_code = 422
    code = "unstorable_value"
    message = "The event holds a value that cannot be stored; nothing was recorded."

    def __init__(self) -> None:
        super().__init__(fields={"non_field_errors": [self.message]})


class BatchTooLarge(CreditlineError):
    status_code = 422
    code = "invalid_input"
    message = "A batch holds at most 1000 events."


# Workflow runs (metering/workflows.py).


class SoftCapReached(CreditlineError):
    status_code = 402
    code = "soft_cap_reached"
    message = "The available balance is under the soft cap: no new workflow run can start."


class SubscriptionPastDue(CreditlineError):
    """The tenant's subscription invoice is unpaid past the vendor's grace days (billing set
    `Tenant.runs_refused_from`). Details: `refused_from`."""

    status_code = 402
    code = "subscription_past_due"
    message = (
        "The subscription's invoice is unpaid past its grace days: no new workflow run can "
        "start until it is paid."
    )


class IllegalTransition(CreditlineError):
    """Details: `state` (the run's current state) and `workflow_id`."""

    status_code = 409
    code = "illegal_transition"
    message = "The workflow run cannot do that in its current state."


class ResumeFromStep(CreditlineError):
    """A new step on a suspended run that is not the step it stopped at: the run resumes from
    exactly where it stopped. Details: `state`, `workflow_id`, `resume_from_step`."""

    status_code = 409
    code = "resume_step_required"
    message = "The workflow run is suspended: it resumes with the step it stopped at."


class WorkflowSuspended(CreditlineError):
    """A step the balance could not pay: the run is now suspended and nothing was charged.
    Details: `state`, `workflow_id`, `resume_from_step`, `required`, `available`."""

    status_code = 402
    code = "insufficient_credits"
    message = "The balance cannot pay this step: the run is suspended until credits arrive."


# Refunds of an event's debit (metering/usage/refund.py).


class UsageEventNotFound(CreditlineError):
    """Details: `idempotency_key`."""

    status_code = 404
    code = "usage_event_not_found"
    message = "No usage event of this customer has that idempotency key."


class NothingCharged(CreditlineError):
    """The event charged no credits (free, or an outcome-priced failure): nothing to refund.
    Details: `idempotency_key`."""

    status_code = 409
    code = "nothing_charged"
    message = "This usage event charged no credits: there is nothing to refund."
