"""Typed errors of rate cards and the cost catalog; the API renders them as one error body."""

from typing import Any

from tenants.exceptions import CreditlineError


class _FieldError(CreditlineError):
    """An error about one input field, named in `details["field"]`; the API's error body names it
    in `fields` (tenants/api/errors.py), and in the deprecated `field` for one release."""

    field = ""

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message, **{"field": self.field, **details})


class RateCardNotFound(CreditlineError):
    status_code = 422
    code = "no_rate_card"
    message = "No rate card version is in force for this tenant."


class UnknownAction(_FieldError):
    status_code = 422
    code = "unknown_action"
    message = "The rate card has no rate for this action."
    field = "action"


class UnknownModelClass(_FieldError):
    status_code = 422
    code = "unknown_model_class"
    message = "The rate card has no rate or multiplier for this model class."
    field = "model_class"


class PublishedVersionImmutable(CreditlineError):
    status_code = 409
    code = "version_published"
    message = "A published version cannot be changed; create a new draft version instead."


class EffectiveFromInPast(_FieldError):
    status_code = 422
    code = "effective_from_in_past"
    message = "effective_from may not lie in the past."
    field = "effective_from"


class EmptyVersion(CreditlineError):
    status_code = 422
    code = "empty_version"
    message = "A version without rates cannot be published."


class InvalidAssignment(_FieldError):
    status_code = 422
    code = "invalid_assignment"
    message = "The rate card assignment is not valid."


class InvalidRate(_FieldError):
    status_code = 422
    code = "invalid_rate"
    message = "The rate is not valid."


class CostCatalogNotFound(CreditlineError):
    status_code = 422
    code = "no_cost_catalog"
    message = "No cost catalog version is in force."


class UnknownCostComponent(_FieldError):
    status_code = 422
    code = "unknown_cost_component"
    message = "The cost catalog has no price for this component."
    field = "components"
