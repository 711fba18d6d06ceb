from tenants.exceptions import CreditlineError


class InsufficientCredits(CreditlineError):
    status_code = 402
    code = "insufficient_credits"
    message = "The available balance cannot cover this charge."


class IdempotencyConflict(CreditlineError):
    status_code = 409
    code = "idempotency_conflict"
    message = "This idempotency key was already used for a different request."


class InvalidAmount(CreditlineError):
    status_code = 422
    code = "invalid_amount"
    message = "The amount must be a positive number of credits with at most 4 decimal places."


class NotReversible(CreditlineError):
    status_code = 409
    code = "not_reversible"
    message = "This transaction cannot be reversed."


class HoldNotOpen(CreditlineError):
    status_code = 409
    code = "hold_not_open"
    message = "This hold has already been released."
