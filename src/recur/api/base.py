"""The REST API object, its authentication, error shape and paging (SPEC §12)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Callable

from django.db.models import QuerySet
from django.http import Http404
from django.utils import translation
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from recur.core.auth import authenticate_token, token_allows
from recur.core.errors import Forbidden, ServiceError
from recur.core.money import format_amount, parse_amount, validate_currency

api = NinjaAPI(
    title="Recur API",
    version="1",
    description="Subscriptions, CRM records, invoices and payments. Authenticate with `Authorization: Bearer <token>`.",
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def _in_english(run):
    """The API answers in English whoever asks (a user whose language is Dutch, a Dutch
    Accept-Language): clients match on messages in their logs; ``code`` and ``field`` are the
    stable contract. Wraps each operation's whole run — authentication, the view and the error
    handlers — so service errors are raised, and rendered, in English."""

    @functools.wraps(run)
    def wrapper(request, *args, **kw):
        translation.activate("en")
        request.LANGUAGE_CODE = "en"
        return run(request, *args, **kw)

    return wrapper


api.add_decorator(_in_english, mode="view")


class TokenAuth(HttpBearer):
    """Bearer token with a required scope: 401 without a valid token, 403 without the scope."""

    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def authenticate(self, request, token: str):
        found = authenticate_token(token)
        if found is None:
            return None
        if not token_allows(found, self.scope):
            raise Forbidden(f"This token lacks the scope {self.scope!r}", code="insufficient_scope")
        request.user = found.user
        request.api_token = found
        return found


def scoped(scope: str) -> TokenAuth:
    return TokenAuth(scope)


def _error(request, status: int, code: str, message: str, field: str | None = None):
    return api.create_response(
        request, {"error": {"code": code, "message": message, "field": field}}, status=status
    )


@api.exception_handler(ServiceError)
def _service_error(request, exc: ServiceError):
    return _error(request, exc.status, exc.code, exc.message, exc.field)


@api.exception_handler(NinjaValidationError)
def _validation_error(request, exc: NinjaValidationError):
    first = exc.errors[0] if exc.errors else {}
    loc = [str(p) for p in first.get("loc", []) if p not in ("body", "query", "path", "payload", "data")]
    # ninja names the body parameter; drop it when it is the first element
    if len(loc) > 1 and loc[0] in ("payload", "body", "data"):
        loc = loc[1:]
    field = ".".join(loc) or None
    msg = first.get("msg", "Invalid input")
    if first.get("type") == "json_invalid":
        return _error(request, 400, "malformed_json", "The request body is not valid JSON", None)
    return _error(request, 422, "validation_error", f"{field}: {msg}" if field else msg, field)


@api.exception_handler(AuthenticationError)
def _auth_error(request, exc):
    return _error(request, 401, "unauthorized", "A valid API token is required (Authorization: Bearer <token>)")


@api.exception_handler(Http404)
def _not_found(request, exc):
    return _error(request, 404, "not_found", str(exc) or "Not found")


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    code = "malformed_json" if exc.status_code == 400 else "error"
    return _error(request, exc.status_code, code, str(exc))


# --- shared schemas ----------------------------------------------------------------


class MoneySchema(Schema):
    amount: str
    currency: str


def money_out(minor: int | None, currency: str) -> dict | None:
    if minor is None:
        return None
    return {"amount": format_amount(minor, currency), "currency": currency}


def money_in(value: MoneySchema | dict | None, field: str) -> tuple[int, str] | None:
    """Parse a money object into (minor units, currency); errors name ``field``."""
    from recur.core.errors import ValidationFailed

    if value is None:
        return None
    data = value if isinstance(value, dict) else value.dict()
    try:
        currency = validate_currency(data.get("currency", ""))
    except ValueError as exc:
        raise ValidationFailed(f"{field}.currency: {exc}", field=f"{field}.currency") from None
    try:
        return parse_amount(str(data.get("amount", "")), currency), currency
    except ValueError as exc:
        raise ValidationFailed(f"{field}.amount: {exc}", field=f"{field}.amount") from None


class ErrorDetail(Schema):
    code: str
    message: str
    field: str | None = None


class ErrorOut(Schema):
    error: ErrorDetail


def iso(value: dt.datetime | dt.date | None) -> str | None:
    """Dates as YYYY-MM-DD; times as ISO 8601 in UTC, whatever zone they arrived in."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat()
    return value.isoformat() if value else None


# --- paging ------------------------------------------------------------------------

MAX_LIMIT = 200


def paginate(qs: QuerySet, limit: int | None, after: str | None, serialize: Callable[[Any], dict]) -> dict:
    """Cursor paging by primary key: ``?limit=&after=`` → ``{"items", "next"}``."""
    from recur.core.errors import ValidationFailed

    limit = 50 if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit: must be between 1 and {MAX_LIMIT}", field="limit")
    if after:
        try:
            qs = qs.filter(pk__gt=int(after))
        except ValueError:
            raise ValidationFailed("after: not a cursor returned by this API", field="after") from None
    rows = list(qs.order_by("pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [serialize(r) for r in rows], "next": str(rows[-1].pk) if more and rows else None}
