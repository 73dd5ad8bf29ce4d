"""Django settings for Recur, read from the environment (SPEC §12).

DATABASE_URL      default: SQLite file under RECUR_DATA_DIR (default ./var), WAL mode
RECUR_PROCESSOR   builtin | stripe
STRIPE_API_KEY, STRIPE_API_BASE, STRIPE_WEBHOOK_SECRET   the Stripe processor (docs/stripe.md)
STRIPE_PUBLISHABLE_KEY, STRIPE_JS_URL   card entry on the hosted pages with Stripe.js (docs/stripe.md)
EMAIL_URL         smtp://user:pass@host:port  (default: local outbox only)
RECUR_TIME_ZONE   the default account time zone of a fresh installation (Europe/Amsterdam); the Settings
                  page changes it (recur.core.account)
RECUR_TEST_MODE   1 enables the simulated clock and test payment details
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("RECUR_DATA_DIR", "var")).resolve()


def _flag(name: str, default: str = "0") -> bool:
    return os.environ.get(name, default).strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    key = os.environ.get("RECUR_SECRET_KEY")
    if key:
        return key
    # Self-hosted default: a random key generated once and kept in the data dir.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / "secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _flag("RECUR_DEBUG")
ALLOWED_HOSTS = [h for h in os.environ.get("RECUR_ALLOWED_HOSTS", "*").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("RECUR_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
RECUR_TEST_MODE = _flag("RECUR_TEST_MODE")
RECUR_PROCESSOR = os.environ.get("RECUR_PROCESSOR", "builtin")
# Stripe (R-PAY-2; used when RECUR_PROCESSOR=stripe; see docs/stripe.md). STRIPE_API_BASE points
# the SDK elsewhere (tests: a localstripe on loopback).
STRIPE_API_KEY = os.environ.get("STRIPE_API_KEY", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "https://api.stripe.com")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
# The hosted pages collect cards with Stripe.js, which Stripe requires to be loaded from Stripe itself
# (tests: localstripe's mock of it).
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "https://js.stripe.com/v3/")
RECUR_BASE_URL = os.environ.get("RECUR_BASE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "recur.core",
    "recur.crm",
    "recur.payments",
    "recur.notifications",
    "recur.subscriptions",
    "recur.billing",
    "recur.checkout",
    "recur.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "recur.core.middleware.UserLanguageMiddleware",
    "recur.core.middleware.AccountTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "recur.api.idempotency.IdempotencyMiddleware",
    "recur.web.middleware.FirstRunMiddleware",
]

ROOT_URLCONF = "recur.urls"
WSGI_APPLICATION = "recur.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------
_default_sqlite = f"sqlite:///{DATA_DIR / 'recur.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", _default_sqlite), conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run beside the writer; IMMEDIATE takes the write lock
        # at BEGIN so two writers queue instead of failing half-way.
        # cache_size: up to 128 MiB of pages per connection (default 2 MiB); a billing run over
        # 100,000+ subscriptions otherwise re-reads its index pages from the OS on every batch.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;"
                        " PRAGMA cache_size=-131072;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- users ---------------------------------------------------------------
AUTH_USER_MODEL = "core.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- i18n ----------------------------------------------------------------
LANGUAGE_CODE = "en"
FORMAT_MODULE_PATH = ["recur.formats"]  # unambiguous short dates in English (recur/formats/en)
LANGUAGES = [("en", _("English")), ("nl", _("Dutch"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
RECUR_TIME_ZONE = os.environ.get("RECUR_TIME_ZONE", "Europe/Amsterdam")  # default only: see recur.core.account

# --- static --------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": DATA_DIR / "files"}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- e-mail ----------------------------------------------------------------
EMAIL_URL = os.environ.get("EMAIL_URL", "")
DEFAULT_FROM_EMAIL = os.environ.get("RECUR_FROM_EMAIL", "Recur <billing@localhost>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"recur": {"handlers": ["console"], "level": os.environ.get("RECUR_LOG_LEVEL", "INFO")}},
}
# --- billing ----------------------------------------------------------------
RECUR_WORKER_JOBS: list[str] = ["recur.billing.engine.tick", "recur.notifications.services.deliver_due"]
# Dunning (R-BILL-6): retry a failed charge this many days after each failure; then
# "stay_past_due" or "cancel". Defaults of a fresh installation: the Settings page changes them
# (recur.core.account; read through account.current(), never from here).
RECUR_DUNNING_RETRY_DAYS = [int(d) for d in os.environ.get("RECUR_DUNNING_RETRY_DAYS", "3,5,7").split(",") if d.strip()]
RECUR_DUNNING_FINAL_ACTION = os.environ.get("RECUR_DUNNING_FINAL_ACTION", "stay_past_due")
# An attempt left "started" this long (a crash between charging and recording) is settled again.
RECUR_RECOVERY_GRACE_SECONDS = float(os.environ.get("RECUR_RECOVERY_GRACE_SECONDS", "60"))
RECUR_MAX_BACKDATE_DAYS = int(os.environ.get("RECUR_MAX_BACKDATE_DAYS", "31"))
