"""Users and API tokens (R-ALL-2)."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from recur.core import clock
from recur.core.errors import Conflict, ValidationFailed
from recur.core.models import ApiToken, User

# Each API area has a read and a write scope; "*" grants everything.
SCOPES = (
    "crm:read", "crm:write",
    "subscriptions:read", "subscriptions:write",
    "billing:read", "billing:write",
    "exports:read", "exports:write",
    "reports:read",
)
TOKEN_PREFIX = "rcr_"


UI_LANGUAGES = ("en", "nl")


def set_user_language(user: User, language: str) -> str:
    """The interface language of a user (R-ALL-3); an unknown one becomes English. Returns it."""
    language = language if language in UI_LANGUAGES else "en"
    User.objects.filter(pk=user.pk).update(language=language)
    return language


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def create_user(email: str, password: str, *, super_admin: bool = False, name: str = "", language: str = "en") -> User:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationFailed(_("%(field)s: %(value)s is not a valid e-mail address")
                               % {"field": "email", "value": repr(email)}, field="email") from None
    if User.objects.filter(email=email).exists():
        raise Conflict(_("email: a user with e-mail %(email)s already exists") % {"email": email}, field="email")
    try:
        validate_password(password)
    except ValidationError as exc:
        # Django's password validators speak the active language already.
        raise ValidationFailed("password: " + " ".join(exc.messages), field="password") from None
    if super_admin:
        return User.objects.create_superuser(email, password, name=name, language=language)
    return User.objects.create_user(email, password, name=name, language=language)


@transaction.atomic
def create_token(user: User, name: str, scopes: list[str] | None = None) -> tuple[ApiToken, str]:
    """Make a token; returns the row and the raw token, which is shown once and never stored."""
    if not name or not name.strip():
        raise ValidationFailed(_("name: a token needs a name"), field="name")
    scopes = list(scopes) if scopes else ["*"]
    for s in scopes:
        if s != "*" and s not in SCOPES:
            raise ValidationFailed(_("scopes: unknown scope %(value)s; known: %(choices)s")
                                   % {"value": repr(s), "choices": ", ".join(("*",) + SCOPES)}, field="scopes")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip(), prefix=raw[:10], token_hash=hash_token(raw), scopes=scopes
    )
    return token, raw


def authenticate_token(raw: str) -> ApiToken | None:
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_token(raw or ""), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is not None:
        now = clock.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_allows(token: ApiToken, scope: str) -> bool:
    return "*" in token.scopes or scope in token.scopes
