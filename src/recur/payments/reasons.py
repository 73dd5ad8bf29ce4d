"""Why a charge failed, in the reader's language: processors word their refusals in English, so a
known failure code is told with our own (translated) words; an unknown one keeps the processor's.

The words depend on the payment method (insufficient funds on a bank debit is not a card problem)
and on who reads them: the buyer ("your card") or the seller ("the card")."""

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
# A bank debit refused for a reason the processors share with cards, or given a card's code (Stripe
# reports a failure without a code as card_declined).
BANK_REASONS = {
    "insufficient_funds": gettext_lazy("There is not enough money on the bank account."),
    "card_declined": REASONS["debit_failed"],
    "generic_decline": REASONS["debit_failed"],
    "expired_card": REASONS["debit_failed"],
}
# The seller's e-mails speak of the buyer's card, not to the buyer.
SELLER_REASONS = {
    "card_declined": gettext_lazy("The card was declined."),
    "insufficient_funds": gettext_lazy("The card has insufficient funds."),
    "expired_card": gettext_lazy("The card has expired."),
    "processing_error": gettext_lazy("The payment could not be processed."),
}


def failure_reason(code: str | None, message: str | None, method_type: str | None = None, *,
                   seller: bool = False) -> str:
    """The reason for ``code`` in the active language (worded for a bank account when ``method_type``
    is one, and for the seller when ``seller``), else the processor's ``message``, else a plain
    "declined"."""
    code = code or ""
    text = (BANK_REASONS.get(code) if method_type == "bank_account" else None) \
        or (SELLER_REASONS.get(code) if seller else None) or REASONS.get(code)
    return str(text) if text else (message or gettext("The payment was declined."))
