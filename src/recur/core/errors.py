"""Expected errors raised by services.

Each carries an HTTP status, a machine code, a message and (when one field is
at fault) the field's name. The API renders them as
``{"error": {"code", "message", "field"}}``; forms show them beside the field.
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    def as_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class ValidationFailed(ServiceError):
    status = 422
    code = "validation_error"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


def from_django_validation(exc) -> ValidationFailed:
    """Turn a Django ``ValidationError`` (from full_clean) into one naming the field."""
    if hasattr(exc, "error_dict"):
        field, errors = next(iter(exc.error_dict.items()))
        message = " ".join(str(m) for e in errors for m in e.messages)
        if field == "__all__":
            field = None
        return ValidationFailed(f"{field}: {message}" if field else message, field=field)
    return ValidationFailed(" ".join(exc.messages))
