"""The one processor interface (R-PAY-3). The billing engine talks to this and
never knows which processor is behind it.

Rules every implementation keeps:
- ``charge_many`` is called only after the caller committed a payment-attempt
  row carrying ``idempotency_key``; the caller records the results in a second
  transaction. A crash in between is resolved with ``lookup(key)``.
- The same idempotency key never moves money twice, even when the processor
  itself does not dedupe keys (the implementation looks the key up first).
- Amounts are integer minor units with an ISO 4217 currency.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple, Protocol

ChargeStatus = Literal["succeeded", "failed", "pending"]


# Charge requests and results are named tuples: the billing run makes two or three per renewal,
# and a tuple is made several times faster than a frozen dataclass. Both are immutable.
class ChargeRequest(NamedTuple):
    idempotency_key: str
    payment_method_ref: str  # processor token of a saved payment method
    customer_ref: str  # processor customer id ("" when the processor has none)
    amount: int
    currency: str
    description: str = ""
    metadata: dict | None = None  # JSON-able; None: none


class ChargeResult(NamedTuple):
    idempotency_key: str
    status: ChargeStatus
    charge_ref: str = ""  # processor id of the charge, for refunds and look-ups
    failure_code: str = ""  # e.g. card_declined, insufficient_funds, processing_error
    failure_message: str = ""


@dataclasses.dataclass(frozen=True)
class RefundResult:
    idempotency_key: str
    status: Literal["succeeded", "failed", "pending"]
    refund_ref: str = ""
    failure_message: str = ""


@dataclasses.dataclass(frozen=True)
class SavedMethod:
    """What may be kept about a payment method: never a full number or CVC."""

    type: Literal["card", "bank_account"]
    processor_ref: str
    brand: str = ""
    last4: str = ""
    exp_month: int | None = None
    exp_year: int | None = None
    fingerprint: str = ""


@dataclasses.dataclass(frozen=True)
class AsyncEvent:
    """An outcome that arrives later (a bank debit settling or failing)."""

    event_id: str
    idempotency_key: str
    status: ChargeStatus
    charge_ref: str = ""
    failure_code: str = ""
    failure_message: str = ""


@dataclasses.dataclass(frozen=True)
class MethodEntry:
    """What a hosted page needs to let the buyer enter a payment method.

    ``mode`` ``"fields"``: the page posts the raw card / bank fields and the processor
    tokenizes them on the server (the built-in processor). ``mode`` ``"stripe"``: the page
    loads ``script_url`` (Stripe.js), mounts a card Element with ``publishable_key``,
    confirms the SetupIntent whose ``client_secret`` is given, and posts only the
    resulting PaymentMethod id (``{"type": "card", "token": "pm_…", "setup_intent": "seti_…"}``).

    ``methods``: the types this page can collect, out of those asked for (possibly none).
    ``bank_scheme``: how a ``bank_account`` is entered: ``"ach"`` (routing and account number,
    the built-in processor) or ``"sepa"`` (an IBAN, Stripe's SEPA Direct Debit).
    """

    mode: Literal["fields", "stripe"]
    methods: tuple[str, ...]
    publishable_key: str = ""
    client_secret: str = ""
    script_url: str = ""
    unavailable: tuple[str, ...] = ()  # asked-for types this processor cannot collect on a page
    bank_scheme: str = "ach"
    email: str = ""  # the buyer's e-mail when known (Stripe wants it with a SEPA mandate)


class Processor(Protocol):
    name: str

    def ensure_customer(self, contact) -> str:
        """The processor's customer id for a contact (created when missing)."""

    def method_entry(self, contact, methods: list[str], *, currency: str = "", prepare: bool = True) -> MethodEntry:
        """How a hosted page collects one of ``methods`` for ``contact`` (None: a buyer not known
        yet) to pay in ``currency``. With ``prepare=False`` nothing is created at the processor:
        only which types the page can take, to check a posted form."""

    def create_customer(self, name: str, email: str) -> str:
        """A customer for a buyer who is not a contact yet (a checkout, before its charge succeeded).
        Recur ties it to the contact made on success (``payments.services.bind_customer``)."""

    def save_payment_method(self, customer_ref: str, details: dict) -> SavedMethod:
        """Tokenize and attach card or bank details, or attach what the processor collected
        itself (``{"type": "card" | "bank_account", "token": …}``); raises ValidationFailed
        naming the field."""

    def forget_payment_method(self, processor_ref: str) -> None:
        """Detach a saved method that will never be charged (a declined checkout). Never raises."""

    def charge_many(self, requests: list[ChargeRequest]) -> list[ChargeResult]:
        """Charge off-session, one result per request, in order."""

    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The outcome of an earlier charge with this key, or None if none was made."""

    def refund(self, charge_ref: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        """Refund part or all of a succeeded charge."""

    def poll_events(self) -> list[AsyncEvent]:
        """Asynchronous outcomes that are due now (the built-in processor's bank debits)."""


def get_processor(name: str | None = None) -> Processor:
    """The configured processor (RECUR_PROCESSOR), or the one named: a saved payment method is
    always charged by the processor that saved it, whatever the setting says today."""
    from django.conf import settings

    if (name or settings.RECUR_PROCESSOR) == "stripe":
        from recur.payments.stripe import StripeProcessor

        return StripeProcessor()
    from recur.payments.builtin import BuiltinProcessor

    return BuiltinProcessor()
