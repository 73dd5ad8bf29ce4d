"""The Stripe processor (R-PAY-2, R-PAY-3), through Stripe's official Python SDK.

Recur keeps the schedule; Stripe is only asked to charge. No Stripe Subscription,
Price, Product or Invoice is ever created: each due period is one off-session,
confirmed PaymentIntent on the customer's saved PaymentMethod.

Money safety (DESIGN "Money safety rules" 2 and 5):

- Every PaymentIntent carries the engine's idempotency key twice: as Stripe's
  ``Idempotency-Key`` header and in ``metadata["recur_idempotency_key"]``.
- Before creating a PaymentIntent the key is LOOKED UP at Stripe, and a found
  PaymentIntent is returned instead of a new one. Recur never relies on Stripe to
  dedupe keys (Stripe forgets them after 24 hours; localstripe never dedupes).
- The SDK's own network retries are off: a network error is raised, the attempt
  stays ``started`` and the engine's recovery settles it with the same key (and
  so, thanks to the look-up, without a second PaymentIntent).
- Refunds are checked against what Stripe received minus what was refunded
  before one is asked for, and are looked up by key first as well.

Look-ups: against Stripe itself the PaymentIntents of the request's customer are
listed (strongly consistent) and filtered on the metadata; ``lookup(key)`` finds
the customer through the payment attempt carrying the key, and only a key
without a known customer falls back to the Search API (eventually consistent,
by about a minute; inside that window Stripe's own 24-hour key replay holds).
localstripe (any API base that is not ``*.stripe.com``) has neither search nor a
customer filter, so there every PaymentIntent is listed and filtered.

Asynchronous outcomes (bank debits that stay ``processing``) arrive through the
signed webhook in ``recur.payments.webhooks``; ``poll_events`` has nothing to do.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from urllib.parse import urlparse

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

from recur.core import clock
from recur.core.errors import ServiceError, ValidationFailed
from recur.core.money import MAX_MINOR, format_amount, validate_currency
from recur.payments.models import ProcessorCustomer
from recur.payments.processor import (
    AsyncEvent, ChargeRequest, ChargeResult, MethodEntry, RefundResult, SavedMethod,
)

log = logging.getLogger("recur.payments.stripe")

KEY_FIELD = "recur_idempotency_key"  # metadata key on PaymentIntents and Refunds
DEFAULT_API_BASE = "https://api.stripe.com"
DEFAULT_JS_URL = "https://js.stripe.com/v3/"
BANK_TYPES = ("us_bank_account", "sepa_debit", "bacs_debit", "au_becs_debit", "acss_debit")
_PAGE = 100  # Stripe's largest page
# When Stripe holds several PaymentIntents for one key (only possible if something
# other than Recur made them), the one that moved the most money speaks for the key.
_RANK = {"succeeded": 0, "processing": 1, "requires_capture": 2}


class ProcessorUnavailable(ServiceError):
    """Stripe could not be reached or answered with an error of its own (try again later)."""

    status = 503
    code = "processor_unavailable"


def is_localstripe(api_base: str) -> bool:
    """True for any API base that is not Stripe's own (tests run against localstripe on loopback)."""
    host = (urlparse(api_base).hostname or "").lower()
    return not (host == "stripe.com" or host.endswith(".stripe.com"))


_clients: dict[tuple[str, str], stripe.StripeClient] = {}
_clients_lock = threading.Lock()


def client() -> stripe.StripeClient:
    """One SDK client per (key, base), built on first use."""
    key, base = settings.STRIPE_API_KEY, settings.STRIPE_API_BASE or DEFAULT_API_BASE
    if not key:
        raise ImproperlyConfigured("STRIPE_API_KEY must be set when RECUR_PROCESSOR=stripe (see docs/stripe.md)")
    with _clients_lock:
        if (key, base) not in _clients:
            _clients[(key, base)] = stripe.StripeClient(
                key, base_addresses={"api": base}, max_network_retries=0,  # retries are the engine's, by key
            )
        return _clients[(key, base)]


def _plain(obj) -> dict:
    """An SDK object (or a dict) as plain nested dicts."""
    if obj is None:
        return {}
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _key_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get(KEY_FIELD) or ""


def _message(exc: stripe.StripeError) -> str:
    return str(exc.user_message or getattr(exc, "_message", "") or exc)[:300]


def _install_id() -> str:
    return hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest()[:8]


# --- PaymentIntent → ChargeResult ----------------------------------------------------------


def failure_of(pi: dict) -> tuple[str, str]:
    """(failure_code, failure_message) of a PaymentIntent's last error."""
    err = pi.get("last_payment_error") or {}
    code = err.get("decline_code") or err.get("code") or "card_declined"
    return str(code)[:40], str(err.get("message") or "The payment was declined.")[:300]


def result_of(pi: dict, key: str | None = None) -> ChargeResult:
    """What a PaymentIntent's status means for the engine."""
    key = key or _key_of(pi)
    status, ref = pi.get("status"), pi.get("id", "")
    if status == "succeeded":
        return ChargeResult(key, "succeeded", ref)
    if status in ("processing", "requires_capture"):
        return ChargeResult(key, "pending", ref)
    if status == "requires_payment_method":
        return ChargeResult(key, "failed", ref, *failure_of(pi))
    if status in ("requires_action", "requires_confirmation"):
        return ChargeResult(key, "failed", ref, "authentication_required",
                            "The bank asked the customer to authenticate this payment, which off-session charges cannot do.")
    return ChargeResult(key, "failed", ref, "canceled", "The payment was canceled at Stripe.")


# --- the processor ---------------------------------------------------------------------------


class StripeProcessor:
    """Implements ``recur.payments.processor.Processor`` with Stripe's API."""

    name = "stripe"

    def __init__(self):
        self.local = is_localstripe(settings.STRIPE_API_BASE or DEFAULT_API_BASE)

    @property
    def client(self) -> stripe.StripeClient:
        return client()

    # --- customers and payment methods ------------------------------------------------------

    def ensure_customer(self, contact) -> str:
        """A Stripe Customer per contact, created once and kept in ``ProcessorCustomer``."""
        existing = ProcessorCustomer.objects.filter(contact=contact, processor=self.name)
        ref = existing.values_list("customer_ref", flat=True).first()
        if ref:
            return ref
        params = {"name": contact.name[:200], "metadata": {"recur_contact_id": str(contact.pk)}}
        if contact.email:
            params["email"] = contact.email
        stamp = int(contact.created_at.timestamp()) if getattr(contact, "created_at", None) else 0
        try:
            customer = self.client.v1.customers.create(
                params, {"idempotency_key": f"recur-cus-{_install_id()}-{contact.pk}-{stamp}"})
        except stripe.StripeError as exc:
            raise ProcessorUnavailable(f"Stripe did not create the customer: {_message(exc)}") from exc
        try:
            with transaction.atomic():
                ProcessorCustomer.objects.create(contact=contact, processor=self.name, customer_ref=customer.id,
                                                 created_at=clock.now())
        except IntegrityError:  # a concurrent call saved its customer first; ours stays unused at Stripe
            pass
        return existing.values_list("customer_ref", flat=True).get()

    def method_entry(self, contact, methods: list[str], *, currency: str = "", prepare: bool = True) -> MethodEntry:
        """Cards in a Stripe.js card Element, and bank accounts as SEPA Direct Debit (an IBAN, for
        euro amounts only), confirmed against a SetupIntent (``usage=off_session``, so that the
        bank allows the later charges without the buyer). The SetupIntent belongs to the
        contact's Stripe Customer when the buyer is known, else to none: the PaymentMethod is
        attached to the buyer's Customer when the form comes back.

        A bank account in another currency is not offered (``unavailable``): Stripe collects US
        bank accounts through Financial Connections, which the local emulator the tests run
        against cannot do (docs/stripe.md). Neither is SEPA when the Stripe account refuses it."""
        sepa = str(currency).upper() == "EUR"
        can = tuple(m for m in methods if m == "card" or (m == "bank_account" and sepa))
        email = str(getattr(contact, "email", "") or "")
        if not prepare or not can:
            return MethodEntry("stripe", can, unavailable=tuple(m for m in methods if m not in can),
                               bank_scheme="sepa", email=email)
        key = settings.STRIPE_PUBLISHABLE_KEY
        if not key:
            raise ImproperlyConfigured("STRIPE_PUBLISHABLE_KEY must be set when RECUR_PROCESSOR=stripe "
                                       "(see docs/stripe.md)")
        params = {"usage": "off_session", "metadata": {"recur": "hosted_page"}}
        if contact is not None:
            params["customer"] = self.ensure_customer(contact)
        intent = None
        try:
            if "bank_account" in can:
                try:
                    intent = self.client.v1.setup_intents.create(
                        {**params, "payment_method_types": ["card", "sepa_debit"] if "card" in can else ["sepa_debit"]})
                except stripe.InvalidRequestError as exc:  # SEPA Direct Debit not activated on this account
                    log.warning("Stripe refused a SEPA Direct Debit SetupIntent; bank debit is not offered: %s",
                                _message(exc))
                    can = tuple(m for m in can if m != "bank_account")
            if intent is None and can:
                intent = self.client.v1.setup_intents.create({**params, "payment_method_types": ["card"]})
        except stripe.StripeError as exc:
            raise ProcessorUnavailable(f"Stripe did not start the card entry: {_message(exc)}") from exc
        return MethodEntry("stripe", can, publishable_key=key, client_secret=intent.client_secret if intent else "",
                           script_url=settings.STRIPE_JS_URL or DEFAULT_JS_URL,
                           unavailable=tuple(m for m in methods if m not in can), bank_scheme="sepa", email=email)

    def create_customer(self, name: str, email: str) -> str:
        """A Stripe Customer for a checkout buyer who is not a contact yet (bound to the contact on success)."""
        params = {"name": name[:200], "metadata": {"recur_checkout": "1"}}
        if email:
            params["email"] = email
        try:
            return self.client.v1.customers.create(params).id
        except stripe.StripeError as exc:
            raise ProcessorUnavailable(f"Stripe did not create the customer: {_message(exc)}") from exc

    def forget_payment_method(self, processor_ref: str) -> None:
        """Detach the PaymentMethod from its customer; a failure is logged, never raised."""
        try:
            self.client.v1.payment_methods.detach(processor_ref)
        except stripe.StripeError as exc:
            log.warning("Stripe did not detach PaymentMethod %s: %s", processor_ref, _message(exc))

    def save_payment_method(self, customer_ref: str, details: dict) -> SavedMethod:
        """Attach a Stripe PaymentMethod: ``{"type": "card" | "bank_account", "token": "pm_…",
        "setup_intent": "seti_…"}`` from a hosted page (the SetupIntent is checked: succeeded, for
        this PaymentMethod, and for this customer or none), or ``{"type": "stripe",
        "stripe_payment_method": "pm_…"}`` from the API.

        Against localstripe only, ``{"type": "card", "card": {…}}`` is accepted too: the
        PaymentMethod is made from the test card first. The number is never kept.
        """
        kind = details.get("type") if isinstance(details, dict) else None
        if kind in ("card", "bank_account") and "token" in details:
            field = "token"
            pm = self._collected(customer_ref, details)
            wanted = ("card",) if kind == "card" else BANK_TYPES
            if pm.get("type") not in wanted:
                raise ValidationFailed(f"token: this PaymentMethod is a {pm.get('type')}, not a {kind}", field=field)
        elif kind == "stripe":
            field = "stripe_payment_method"
            pm_id = str(details.get(field) or "").strip()
            if not pm_id.startswith("pm_"):
                raise ValidationFailed(f"{field}: a Stripe PaymentMethod id (pm_…) is required", field=field)
            try:
                pm = _plain(self.client.v1.payment_methods.retrieve(pm_id))
            except stripe.InvalidRequestError as exc:
                raise ValidationFailed(f"{field}: Stripe has no PaymentMethod {pm_id!r}", field=field) from exc
            except stripe.StripeError as exc:
                raise ProcessorUnavailable(f"Stripe did not answer: {_message(exc)}") from exc
        elif kind == "card" and self.local:
            field = "card.number"
            pm = self._test_card(details)
        elif kind in ("card", "bank_account"):
            raise ValidationFailed(
                "type: with the Stripe processor, send the id of a PaymentMethod collected by Stripe "
                '({"type": "stripe", "stripe_payment_method": "pm_…"}); card and bank details go to Stripe only',
                field="type")
        else:
            raise ValidationFailed("type: must be stripe (a Stripe PaymentMethod id)", field="type")

        pm_type = pm.get("type")
        if pm_type != "card" and pm_type not in BANK_TYPES:
            raise ValidationFailed(
                f"{field}: a {pm_type} PaymentMethod cannot be charged off-session; use a card or a bank debit",
                field=field)
        if _customer_id(pm) == customer_ref:  # a SetupIntent for this customer attached it already
            return saved_method(pm)
        try:
            pm = _plain(self.client.v1.payment_methods.attach(pm["id"], {"customer": customer_ref}))
        except stripe.CardError as exc:
            raise ValidationFailed(f"{field}: the card was declined ({exc.code or 'card_declined'})",
                                   field=field, code=exc.code or None) from exc
        except stripe.InvalidRequestError as exc:
            raise ValidationFailed(f"{field}: Stripe refused this payment method: {_message(exc)}",
                                   field=field) from exc
        except stripe.StripeError as exc:
            raise ProcessorUnavailable(f"Stripe did not answer: {_message(exc)}") from exc
        return saved_method(pm)

    def _collected(self, customer_ref: str, details: dict) -> dict:
        """The PaymentMethod a hosted page collected with Stripe.js, checked against its SetupIntent."""
        pm_id, si_id = str(details.get("token") or "").strip(), str(details.get("setup_intent") or "").strip()
        if not pm_id.startswith("pm_"):
            raise ValidationFailed("token: a Stripe PaymentMethod id (pm_…) is required", field="token")
        if not si_id.startswith("seti_"):
            raise ValidationFailed("setup_intent: the SetupIntent (seti_…) that collected the method is required",
                                   field="setup_intent")
        try:
            intent = _plain(self.client.v1.setup_intents.retrieve(si_id))
            pm = _plain(self.client.v1.payment_methods.retrieve(pm_id))
        except stripe.InvalidRequestError as exc:
            raise ValidationFailed(f"token: Stripe does not know this payment method: {_message(exc)}",
                                   field="token") from exc
        except stripe.StripeError as exc:
            raise ProcessorUnavailable(f"Stripe did not answer: {_message(exc)}") from exc
        if intent.get("status") != "succeeded" or _id_of(intent.get("payment_method")) != pm_id:
            raise ValidationFailed("setup_intent: this SetupIntent did not set up that payment method",
                                   field="setup_intent")
        if intent.get("customer") and _id_of(intent.get("customer")) != customer_ref:
            raise ValidationFailed("setup_intent: this SetupIntent belongs to another customer", field="setup_intent")
        if (intent.get("metadata") or {}).get("recur") != "hosted_page":
            raise ValidationFailed("setup_intent: this SetupIntent was not made by Recur", field="setup_intent")
        return pm

    def _test_card(self, details: dict) -> dict:
        """localstripe only: make a PaymentMethod from test card details (checked like the built-in processor's)."""
        from recur.payments.builtin import _card_fields, _section

        card = _section(details, "card")
        checked = _card_fields(card)  # names the field at fault (card.number, card.exp_month, …)
        number = "".join(ch for ch in str(card["number"]) if ch.isdigit())
        try:
            return _plain(self.client.v1.payment_methods.create({"type": "card", "card": {
                "number": number, "exp_month": checked["exp_month"], "exp_year": checked["exp_year"],
                "cvc": str(card["cvc"]).strip(),
            }}))
        except stripe.InvalidRequestError as exc:
            raise ValidationFailed(f"card.number: Stripe refused this card: {_message(exc)}",
                                   field="card.number") from exc
        except stripe.StripeError as exc:
            raise ProcessorUnavailable(f"Stripe did not answer: {_message(exc)}") from exc

    # --- charges --------------------------------------------------------------------------

    def charge_many(self, requests: list[ChargeRequest]) -> list[ChargeResult]:
        """One result per request, in order. Each key is looked up first; only a key Stripe has
        never seen gets a new PaymentIntent. A network or Stripe-side error is raised."""
        if not requests:
            return []
        found = _Found(self)
        pm_types: dict[str, str | None] = {}
        done: dict[str, ChargeResult] = {}  # a key twice in one batch is charged once
        for r in requests:
            if r.idempotency_key not in done:
                done[r.idempotency_key] = self._charge(r, found, pm_types)
        return [done[r.idempotency_key] for r in requests]

    def _charge(self, r: ChargeRequest, found: "_Found", pm_types: dict) -> ChargeResult:
        pi = found.get(r.idempotency_key, r.customer_ref)
        if pi is not None:
            return self._settled(pi, r.idempotency_key)
        refusal = _refusal(r)
        if refusal:
            return ChargeResult(r.idempotency_key, "failed", "", *refusal)
        if r.payment_method_ref not in pm_types:
            try:
                pm_types[r.payment_method_ref] = self.client.v1.payment_methods.retrieve(r.payment_method_ref).type
            except stripe.InvalidRequestError:
                pm_types[r.payment_method_ref] = None
        pm_type = pm_types[r.payment_method_ref]
        if pm_type is None:
            return ChargeResult(r.idempotency_key, "failed", "", "resource_missing",
                                f"No such payment method at Stripe: {r.payment_method_ref!r}")
        params = {
            "amount": r.amount, "currency": r.currency.lower(), "payment_method": r.payment_method_ref,
            "payment_method_types": [pm_type], "off_session": True, "confirm": True,
            "metadata": {**{str(k)[:40]: str(v)[:500] for k, v in (r.metadata or {}).items()},
                         KEY_FIELD: r.idempotency_key},
        }
        if r.customer_ref:
            params["customer"] = r.customer_ref
        if r.description and not self.local:  # localstripe refuses a description
            params["description"] = r.description[:1000]
        try:
            pi = _plain(self.client.v1.payment_intents.create(params, {"idempotency_key": r.idempotency_key}))
        except stripe.CardError as exc:  # declined: Stripe made the PaymentIntent and left it unpaid
            return self._declined(r, exc, found)
        except stripe.IdempotencyError:
            raise  # the key was used with other parameters: a bug to look at, not a decline
        except stripe.InvalidRequestError as exc:
            made = _plain(getattr(exc.error, "payment_intent", None)) if exc.error else {}
            if made.get("id"):
                return self._settled(made, r.idempotency_key)
            return ChargeResult(r.idempotency_key, "failed", "", str(exc.code or "invalid_request")[:40],
                                _message(exc))
        return self._settled(pi, r.idempotency_key)

    def _declined(self, r: ChargeRequest, exc: stripe.CardError, found: "_Found") -> ChargeResult:
        err = exc.error
        pi = _plain(getattr(err, "payment_intent", None)) if err else {}
        ref = pi.get("id") or ""
        if not ref:  # localstripe leaves it out of the error: find the PaymentIntent it made
            made = found.get(r.idempotency_key, r.customer_ref, refresh=True)
            ref = made.get("id", "") if made else ""
        code = (getattr(err, "decline_code", None) if err else None) or exc.code or "card_declined"
        return ChargeResult(r.idempotency_key, "failed", ref, str(code)[:40], _message(exc))

    def _settled(self, pi: dict, key: str) -> ChargeResult:
        """The result for a PaymentIntent; one that waits for the customer is canceled first,
        so that it can never succeed after Recur recorded it as failed."""
        if pi.get("status") in ("requires_action", "requires_confirmation"):
            try:
                pi = _plain(self.client.v1.payment_intents.cancel(pi["id"]))
            except stripe.InvalidRequestError as exc:
                log.warning("could not cancel PaymentIntent %s: %s", pi.get("id"), exc)
                pi = _plain(self.client.v1.payment_intents.retrieve(pi["id"]))
            if pi.get("status") == "canceled":
                return ChargeResult(key, "failed", pi["id"], "authentication_required",
                                    "The bank asked the customer to authenticate this payment, "
                                    "which off-session charges cannot do.")
        return result_of(pi, key)

    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The PaymentIntent made for this key, if any. Against Stripe itself the customer is
        found through the attempt that carries the key, so that the strongly consistent
        customer list is read rather than the (about a minute late) Search API."""
        customer_ref = "" if self.local else _customer_for(idempotency_key)
        pi = _Found(self).get(idempotency_key, customer_ref)
        return None if pi is None else result_of(pi, idempotency_key)

    # --- refunds ----------------------------------------------------------------------------

    def refund(self, charge_ref: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        """Refund part or all of a succeeded PaymentIntent, never more than it has left; the
        same key returns the first refund (looked up at Stripe by metadata)."""
        key = idempotency_key
        try:
            pi = _plain(self.client.v1.payment_intents.retrieve(charge_ref)) if charge_ref.startswith("pi_") else {}
        except stripe.InvalidRequestError:
            pi = {}
        if not pi:
            return RefundResult(key, "failed", failure_message="No such charge")
        refunds = [_plain(x) for x in self.client.v1.refunds.list(
            {"payment_intent": charge_ref, "limit": _PAGE}).auto_paging_iter()] if pi.get("status") == "succeeded" else []
        for earlier in refunds:
            if _key_of(earlier) == key:
                return RefundResult(key, _refund_status(earlier), earlier.get("id", ""))
        problem = _refund_problem(pi, refunds, amount, currency)
        if problem:
            return RefundResult(key, "failed", failure_message=problem)
        try:
            made = _plain(self.client.v1.refunds.create(
                {"payment_intent": charge_ref, "amount": amount, "metadata": {KEY_FIELD: key}},
                {"idempotency_key": key}))
        except (stripe.CardError, stripe.InvalidRequestError) as exc:
            return RefundResult(key, "failed", failure_message=_message(exc))
        return RefundResult(key, _refund_status(made), made.get("id", ""),
                            failure_message=str(made.get("failure_reason") or ""))

    # --- asynchronous outcomes ---------------------------------------------------------------

    def poll_events(self) -> list[AsyncEvent]:
        """Nothing to poll: Stripe reports asynchronous outcomes to the webhook."""
        return []


class _Found:
    """PaymentIntents by idempotency key, fetched at most once per customer (or once in all,
    against localstripe) for one batch of charges."""

    def __init__(self, processor: StripeProcessor):
        self.p = processor
        self.scanned: dict[str, dict[str, dict]] = {}  # scope ("" = everything) → key → PaymentIntent

    def get(self, key: str, customer_ref: str, *, refresh: bool = False) -> dict | None:
        client = self.p.client
        if self.p.local:
            scope, params = "", {"limit": _PAGE}
        elif customer_ref:
            scope, params = customer_ref, {"customer": customer_ref, "limit": _PAGE}
        else:  # Stripe itself, key alone: the Search API
            quoted = key.replace("\\", "\\\\").replace("'", "\\'")
            hits = [_plain(p) for p in client.v1.payment_intents.search(
                {"query": f"metadata['{KEY_FIELD}']:'{quoted}'", "limit": _PAGE}).auto_paging_iter()]
            return _best([p for p in hits if _key_of(p) == key])
        if refresh or scope not in self.scanned:
            index: dict[str, list[dict]] = {}
            for p in client.v1.payment_intents.list(params).auto_paging_iter():
                p = _plain(p)
                if _key_of(p):
                    index.setdefault(_key_of(p), []).append(p)
            self.scanned[scope] = {k: _best(v) for k, v in index.items()}
        return self.scanned[scope].get(key)


def _customer_for(key: str) -> str:
    """The Stripe customer of the payment attempt carrying ``key`` ("" when unknown)."""
    from recur.billing.models import PaymentAttempt

    contact_id = (PaymentAttempt.objects.filter(idempotency_key=key, payment_method__processor=StripeProcessor.name)
                  .values_list("payment_method__contact_id", flat=True).first())
    if contact_id is None:
        return ""
    return ProcessorCustomer.objects.filter(contact_id=contact_id, processor=StripeProcessor.name).values_list(
        "customer_ref", flat=True).first() or ""


def _id_of(value) -> str:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _customer_id(pm: dict) -> str:
    return _id_of(pm.get("customer"))


def _best(intents: list[dict]) -> dict | None:
    if not intents:
        return None
    return min(intents, key=lambda p: (_RANK.get(p.get("status"), 9), -(p.get("created") or 0)))


def _refusal(r: ChargeRequest) -> tuple[str, str] | None:
    """Requests refused before Stripe is asked (as the built-in processor refuses them)."""
    amount = r.amount
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_MINOR:
        return "invalid_request", "amount: must be a positive whole number of minor units"
    try:
        validate_currency(r.currency)
    except ValueError as exc:
        return "invalid_request", f"currency: {exc}"
    if not str(r.payment_method_ref).startswith("pm_"):
        return "resource_missing", f"No such payment method at Stripe: {r.payment_method_ref!r}"
    return None


def _refund_status(refund: dict) -> str:
    status = refund.get("status")
    if status == "succeeded":
        return "succeeded"
    if status in ("failed", "canceled"):
        return "failed"
    return "pending"


def _refund_problem(pi: dict, refunds: list[dict], amount: int, currency: str) -> str:
    if pi.get("status") != "succeeded":
        return f"Only a succeeded charge can be refunded; this one is {pi.get('status')}"
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return "The refund amount must be a positive whole number of minor units"
    cur = str(pi.get("currency") or "").upper()
    if str(currency).upper() != cur:
        return f"The refund currency {currency} differs from the charge's {cur}"
    received = pi.get("amount_received") or pi.get("amount") or 0
    refunded = sum(r.get("amount") or 0 for r in refunds if _refund_status(r) != "failed")
    left = received - refunded
    if amount > left:
        return (f"The refund of {format_amount(amount, cur)} {cur} exceeds what is left to refund "
                f"({format_amount(max(left, 0), cur)} {cur})")
    return ""


def saved_method(pm: dict) -> SavedMethod:
    """What Recur keeps of a Stripe PaymentMethod: type, brand, last four, expiry, fingerprint."""
    pm_type = pm.get("type")
    if pm_type == "card":
        card = pm.get("card") or {}
        return SavedMethod(
            type="card", processor_ref=pm["id"], brand=str(card.get("brand") or "")[:30],
            last4=str(card.get("last4") or "")[:4], exp_month=card.get("exp_month"), exp_year=card.get("exp_year"),
            fingerprint=str(card.get("fingerprint") or "")[:64],
        )
    bank = pm.get(pm_type) or {}
    return SavedMethod(
        type="bank_account", processor_ref=pm["id"], brand=str(bank.get("bank_name") or "")[:30],
        last4=str(bank.get("last4") or "")[:4], fingerprint=str(bank.get("fingerprint") or "")[:64],
    )
