"""Expected errors raised by services.

Each carries an HTTP status, a machine code, a message and (when one field is
at fault) the field's name. The API renders them as
``{"error": {"code", "message", "field"}}``; forms show them beside the field.

Messages are written in the language active when the error is raised
(``gettext`` in the services): the web app's user's language; the API always
activates English (``recur.api.base``). A message that concerns one field
starts with ``"<field>: "`` in every language (``recur.web.forms.service_message``
strips it); ``code`` and ``field`` stay English machine values.
"""

from __future__ import annotations

import datetime as dt

from django.utils import formats, translation
from django.utils.translation import gettext as _


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


def shown_date(value: dt.date) -> str:
    """A date inside an error message: ISO 8601 (2026-03-01) in English, the API's language, whose
    messages clients read and parse as before; in any other language its usual date format."""
    if (translation.get_language() or "en").split("-")[0] == "en":
        return value.isoformat()
    return formats.date_format(value, "DATE_FORMAT")


def shown_amount(minor: int, currency: str) -> str:
    """An amount inside an error message: in English, the API's language, the minor units as before
    (``4900 (minor units)``); in any other language the amount as money in its format (``€ 49,00``)."""
    lang = (translation.get_language() or "en").split("-")[0]
    if lang == "en":
        return f"{minor} (minor units)"
    from decimal import Decimal

    from babel.numbers import format_currency

    from recur.core.money import currency_exponent

    locale = {"nl": "nl_NL"}.get(lang, lang)
    return format_currency(Decimal(int(minor)).scaleb(-currency_exponent(currency)), currency, locale=locale)


def currency_message(field: str, code) -> str:
    """Why ``money.validate_currency(code)`` refused ``code`` (pure code, English), in the active
    language behind ``"<field>: "``; in English word for word its own message."""
    args = {"field": field, "value": repr(code)}
    if not isinstance(code, str):
        return _("%(field)s: Currency must be a three-letter ISO 4217 code, not %(value)s.") % args
    normalised = code.strip().upper()
    if not (len(normalised) == 3 and normalised.isascii() and normalised.isalpha()):
        return _("%(field)s: Currency must be a three-letter ISO 4217 code such as EUR, not %(value)s.") % args
    return _("%(field)s: Unknown currency code %(value)s.") % args


def from_django_validation(exc) -> ValidationFailed:
    """Turn a Django ``ValidationError`` (from full_clean) into one naming the field. Django's own
    messages are lazy: ``str()`` renders them in the active language, behind the English field name."""
    if hasattr(exc, "error_dict"):
        field, errors = next(iter(exc.error_dict.items()))
        message = " ".join(str(m) for e in errors for m in e.messages)
        if field == "__all__":
            field = None
        return ValidationFailed(f"{field}: {message}" if field else message, field=field)
    return ValidationFailed(" ".join(exc.messages))
