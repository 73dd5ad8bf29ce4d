"""Why a charge failed, in the reader's language: processors word their refusals in English, so a
known failure code is told with our own (translated) words; an unknown one keeps the processor's."""

from __future__ import annotations

from django.utils.translation import gettext, gettext_lazy

REASONS = {
    "card_declined": gettext_lazy("Your card was declined."),
    "insufficient_funds": gettext_lazy("Your card has insufficient funds."),
    "expired_card": gettext_lazy("Your card has expired."),
    "debit_failed": gettext_lazy("The bank account could not be debited."),
    "no_payment_method": gettext_lazy("No usable payment method is saved."),
    "processing_error": gettext_lazy("The payment could not be processed. Please try again."),
}


def failure_reason(code: str | None, message: str | None) -> str:
    """The reason for ``code`` in the active language, else the processor's ``message``, else a plain
    "declined"."""
    text = REASONS.get(code or "")
    return str(text) if text else (message or gettext("The payment was declined."))
