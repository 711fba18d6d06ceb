"""The base of every typed domain error; the API renders each as the one error body
(tenants/api/errors.py)."""

from typing import Any


class CreditlineError(Exception):
    """A domain error with an HTTP status, a snake_case code and a sentence for humans."""

    status_code = 400
    code = "error"
    message = "The request could not be completed."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.message
        self.details = details
        super().__init__(self.message)


class TenantNotFound(CreditlineError):
    status_code = 404
    code = "tenant_not_found"
    message = "No tenant has that slug."


class TenantSuspended(CreditlineError):
    status_code = 403
    code = "tenant_suspended"
    message = "This tenant is suspended."
