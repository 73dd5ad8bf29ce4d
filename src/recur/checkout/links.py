"""Signed links to the buyer's hosted pages: they work without logging in,
only for the one record they name, and the update-payment-method link expires
(R-BILL-5, R-ALL-2)."""

from __future__ import annotations

from django.conf import settings
from django.core import signing

UPDATE_PM_SALT = "recur.update-payment-method"
INVOICE_SALT = "recur.invoice"
UPDATE_PM_MAX_AGE = 7 * 24 * 3600  # seven days by default


def base_url() -> str:
    """Where this installation is reached (RECUR_BASE_URL), without the trailing slash: every
    absolute link in e-mails and on pages starts with it."""
    return settings.RECUR_BASE_URL.rstrip("/")


def update_payment_method_token(subscription) -> str:
    """Signed with the clock's time, so the expiry follows the simulated clock in test mode."""
    from recur.core import clock

    sid = getattr(subscription, "pk", subscription)  # a Subscription or its id
    return signing.dumps({"s": sid, "t": int(clock.now().timestamp())}, salt=UPDATE_PM_SALT)


def read_update_payment_method_token(token: str) -> int:
    """The subscription id in a valid, unexpired token; raises signing.BadSignature otherwise."""
    from recur.core import clock

    data = signing.loads(token, salt=UPDATE_PM_SALT)
    age = clock.now().timestamp() - int(data["t"])
    if age > getattr(settings, "RECUR_UPDATE_LINK_MAX_AGE", UPDATE_PM_MAX_AGE) or age < -300:
        raise signing.SignatureExpired("This link has expired")
    return int(data["s"])


def update_payment_method_url(subscription) -> str:
    return f"{base_url()}/billing/update/{update_payment_method_token(subscription)}/"


def invoice_token(invoice) -> str:
    return signing.dumps({"i": getattr(invoice, "pk", invoice)}, salt=INVOICE_SALT)


def read_invoice_token(token: str) -> int:
    return int(signing.loads(token, salt=INVOICE_SALT)["i"])


def invoice_url(invoice) -> str:
    return f"{base_url()}/billing/invoice/{invoice_token(invoice)}/"


def quote_url(quote) -> str | None:
    """The public page of a published quote."""
    return f"{base_url()}/billing/quote/{quote.public_token}/" if quote.public_token else None
