"""Payment links and the hosted checkout (R-NEW-1, R-NEW-2, R-SIGN-1..7).

A buyer pays a payment link (or a published quote) on a hosted page. One
purchase makes one subscription per R-SIGN-4 group of recurring items and
charges, at once, everything due today: the first period of each subscription
that starts today, plus the one-time items.

Money safety — the charge comes FIRST, the purchase only after it:

1. ``_start`` (one transaction): the ``CheckoutSession`` of the form's unique
   ``nonce`` is locked (or created): a double submit finds it charging or
   completed and makes no second purchase. The card or bank account is saved at
   the processor only — on the customer of the contact with the buyer's e-mail
   when there is one, else on a new processor customer — and a
   ``CheckoutAttempt`` carrying the idempotency key ``rc-<install>-cs-<session>-<n>``
   is written. Commit: the key is on disk before the processor is called (rule 2).
2. The processor charges the attempt (``charge_many``; it never moves money twice
   for one key, whatever the processor itself dedupes).
3. ``record_outcome`` (one transaction, session locked) records the result once:

   - **declined**: the attempt is ``failed``, the session ``declined`` with the
     reason, the method is detached at the processor. Nothing else exists: no
     contact, payment method, subscription, invoice or payment. The buyer sees
     why on the same page and retries with the same form (attempt n + 1).
   - **succeeded**, or a bank debit **pending** (R-SIGN-5): everything is made
     together — the contact (found by e-mail or created, bound to the processor
     customer), its payment method, the subscriptions (associated with the
     contact and the link's or quote's deals, R-SIGN-2; Scheduled when they
     start later, R-SIGN-7), and the booking of the charge: ONE INVOICE PER
     SUBSCRIPTION that starts today (its period 0, a billing cycle of its own,
     so the billing run never bills it again: rule 1); the one-time items go on
     the first of them (as Stripe does, so dunning collects them too), or on an
     invoice of their own when no subscription starts today. Each invoice has a payment attempt ``<key>/<i>`` for its
     share of the charge, recorded by the billing engine
     (``engine.record_shared_charge``): one payment per invoice, all with the
     processor's charge id, adding up to the amount charged. The buyer receipt
     and the seller receipts (R-SIGN-1) are queued once for the whole charge.

   A crash between 2 and 3 leaves the attempt ``started``: ``settle_sessions``
   (run by every billing run, and by the confirmation page for its session)
   looks its key up at the processor and records what it finds. It never
   charges again: a key the processor has not seen after ``ABANDON_AFTER`` was
   never charged, and the attempt is closed as failed so the buyer may retry.

Later outcomes of a pending bank debit (polled events, webhooks, the pending
reconciliation) carry the checkout key; ``take_checkout_results`` (called by
``engine.record_results``) records them on every part at once: settled, every
subscription of the checkout is paid for its first period; failed, EVERY one
becomes Unpaid with its own cycle in dunning (R-BILL-6), and the buyer gets one
"payment failed" e-mail.

Recurring payments never create a deal (R-SIGN-3); a link with
``allow_create_deals`` makes one only for a purchase without recurring items.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from recur.billing.engine import install_id
from recur.billing.models import BillingCycle, Invoice, InvoiceLine, Payment, PaymentAttempt
from recur.checkout.models import CheckoutAttempt, CheckoutSession, PaymentLink, PaymentLinkItem
from recur.core import account, clock, records
from recur.core.errors import Conflict, NotFound, ServiceError, ValidationFailed
from recur.core.money import line_amounts
from recur.crm import quotes as quote_services
from recur.crm import services as crm
from recur.crm.models import Quote
from recur.payments import services as payments
from recur.payments.processor import ChargeRequest, ChargeResult, SavedMethod, get_processor
from recur.subscriptions import grouping, schedule
from recur.subscriptions.models import Subscription

log = logging.getLogger("recur.checkout")

METHODS = ("card", "bank_account")
ITEM_FIELDS = quote_services.LINE_FIELDS
# A started attempt whose key the processor still does not know after this long was never charged.
ABANDON_AFTER = dt.timedelta(minutes=10)
# Pending bank debits are looked up at their processor at most this often (events and webhooks
# are the normal path; this is the safety net, as in the billing engine).
RECONCILE_EVERY = dt.timedelta(hours=1)
_last_reconcile: dt.datetime | None = None


class Unavailable(ServiceError):
    """The link is archived, or the quote is not (or no longer) open for payment."""

    status = 410
    code = "unavailable"


# --- payment links (R-NEW-2) ---------------------------------------------------------------------


def _bool(data: dict, name: str, default: bool) -> bool:
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValidationFailed(_("%(field)s: must be true or false") % {"field": name}, field=name)
    return value


@transaction.atomic
def create_payment_link(actor, data: dict[str, Any]) -> PaymentLink:
    """``data``: name, line_items (minor units, as for quotes), accepted_payment_methods,
    collect_billing_address, collect_shipping_address, save_payment_method, allow_create_deals, deal_ids."""
    raw = data.get("line_items") or []
    if not raw:
        raise ValidationFailed(_("line_items: a payment link needs at least one line item"), field="line_items")
    items = quote_services.clean_line_items(raw)
    try:
        grouping.split_recurring(items)  # the R-SIGN-4 key must be computable for every recurring item
    except ValueError as exc:
        from recur.subscriptions.services import split_error

        raise split_error(exc, items) from None
    methods = data.get("accepted_payment_methods")
    methods = account.default_payment_methods() if methods is None else list(methods)
    if not methods or any(m not in METHODS for m in methods):
        raise ValidationFailed(_("accepted_payment_methods: one or more of card, bank_account"),
                               field="accepted_payment_methods")
    recurring = any(it.get("billing_frequency") for it in items)
    save = _bool(data, "save_payment_method", True) or recurring  # always on for recurring items
    name = (data.get("name") or "").strip() or items[0]["name"]
    deals = [records.get_record("deal", d, field="deal_ids") for d in data.get("deal_ids") or []]
    link = records.create(PaymentLink, actor, {
        "name": name[:200], "currency": items[0]["currency"],
        "accepted_payment_methods": [m for m in METHODS if m in methods],
        "collect_billing_address": _bool(data, "collect_billing_address", False),
        "collect_shipping_address": _bool(data, "collect_shipping_address", False),
        "save_payment_method": save, "allow_create_deals": _bool(data, "allow_create_deals", False),
        "active": True, "token": secrets.token_urlsafe(24),
    })
    PaymentLinkItem.objects.bulk_create([
        PaymentLinkItem(link=link, position=pos, product_id=it.get("product_id"),
                        **{k: it[k] for k in ITEM_FIELDS if k in it}) for pos, it in enumerate(items)
    ])
    for deal in deals:
        records.associate(actor, link, deal)
    return link


@transaction.atomic
def archive_payment_link(actor, link: PaymentLink) -> PaymentLink:
    """The link stops taking payments; what it sold is untouched."""
    link = PaymentLink.objects.select_for_update().get(pk=link.pk)
    return records.update(link, actor, {"active": False}) if link.active else link


def link_url(link: PaymentLink) -> str:
    from recur.checkout.links import base_url

    return f"{base_url()}/billing/pay/{link.token}/"


def link_for_token(token: str) -> PaymentLink:
    link = PaymentLink.objects.filter(token=token).first()
    if link is None:
        raise NotFound(_("This payment link does not exist."))
    return link


def quote_for_token(token: str) -> Quote:
    quote = Quote.objects.select_related("contact", "deal").filter(public_token=token).first() if token else None
    if quote is None:
        raise NotFound(_("This quote does not exist."))
    return quote


def quote_open(quote: Quote) -> bool:
    """A published quote that has not expired can be accepted and paid."""
    return quote.status == "published" and not quote_services.quote_expired(quote)


# --- what a purchase costs ------------------------------------------------------------------------


@dataclasses.dataclass
class Group:
    """The items of one future subscription (R-SIGN-4)."""

    items: list[dict]
    frequency: str
    terms: str
    payments: int | None
    start: dt.date
    amount: int  # per period
    today: dt.date

    @property
    def starts_now(self) -> bool:
        return self.start <= self.today


@dataclasses.dataclass
class Plan:
    currency: str
    groups: list[Group]
    one_time: list[dict]

    @property
    def one_time_total(self) -> int:
        return sum(_total(it) for it in self.one_time)

    @property
    def due_now(self) -> int:
        return sum(g.amount for g in self.groups if g.starts_now) + self.one_time_total

    @property
    def recurring(self) -> bool:
        return bool(self.groups)


def _total(it: dict) -> int:
    return line_amounts(it["unit_price"], it.get("quantity", 1), it.get("discount_percent"), None,
                        it.get("tax_rate")).total


def source_items(source) -> list[dict]:
    rows = source.items.all() if isinstance(source, PaymentLink) else source.line_items.all()
    return [{"product_id": li.product_id, **{k: getattr(li, k) for k in ITEM_FIELDS}} for li in rows]


def plan_for(source, today: dt.date | None = None) -> Plan:
    """Groups and one-time items of a payment link or a quote, with start dates for a checkout on
    ``today`` (default: the account's today)."""
    items = source_items(source)
    groups, one_time = grouping.split_recurring(items)
    today = today or clock.today()
    out = []
    for group in groups:
        freq, terms, fixed, days, months, n = grouping.grouping_key(group[0])
        start = today if fixed is not None and fixed < today else schedule.start_date(today, fixed, days, months)
        out.append(Group(group, freq, terms, n, start, sum(_total(it) for it in group), today))
    return Plan(source.currency, out, one_time)


# --- the checkout (R-NEW-1, R-SIGN-1..7) -----------------------------------------------------------


@dataclasses.dataclass
class CheckoutResult:
    """``status``: completed (paid, or nothing due now), pending (bank debit), declined, processing.
    ``charge``: the session's last attempt (amount, currency, status); ``payments``: one per invoice."""

    status: str
    session: CheckoutSession
    subscriptions: list[Subscription]
    charge: CheckoutAttempt | None = None
    payments: list[Payment] = dataclasses.field(default_factory=list)
    reason: str = ""
    failure_code: str = ""

    @property
    def pending(self) -> bool:
        return self.status == "pending"


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _clean_buyer(source, buyer: dict) -> dict:
    name = (buyer.get("name") or "").strip()
    if not name:
        raise ValidationFailed(_("name: enter your name"), field="name")
    email = (buyer.get("email") or "").strip().lower()
    if not email:
        raise ValidationFailed(_("email: enter your e-mail address"), field="email")
    crm._clean_email(email, "email")
    out = {"name": name[:200], "email": email, "language": buyer.get("language") or "en"}
    if isinstance(source, PaymentLink) and source.collect_billing_address:
        out["billing_address"] = _address(buyer.get("billing_address") or {}, "billing_address")
    if isinstance(source, PaymentLink) and source.collect_shipping_address:
        out["shipping_address"] = _address(buyer.get("shipping_address") or {}, "shipping_address")
    return out


def _address(raw: dict, field: str) -> dict:
    address = {k: str(raw.get(k) or "").strip()[:200] for k in
               ("address_line1", "address_line2", "postal_code", "city", "region", "country")}
    for k in ("address_line1", "postal_code", "city", "country"):
        if not address[k]:
            raise ValidationFailed(_("%(field)s: this field is required") % {"field": f"{field}.{k}"},
                                   field=f"{field}.{k}")
    return {k: v for k, v in address.items() if v}


def _accepted(source) -> list[str]:
    if isinstance(source, PaymentLink):
        return [m for m in METHODS if m in (source.accepted_payment_methods or [])] or list(METHODS)
    return list(METHODS)


def _check_source(source) -> None:
    if isinstance(source, PaymentLink):
        if not source.active:
            raise Unavailable(_("This payment link is no longer active."))
        for it in source.items.select_related("product"):
            if it.product is not None and it.product.archived:
                raise Unavailable(_("line_items: the product %(name)s is no longer sold.") % {"name": repr(it.product.name)},
                                  field="line_items")
    else:
        if not quote_open(source):
            raise Unavailable(_("This quote cannot be accepted."), field="status")


def _type_error(allowed: list[str]) -> ValidationFailed:
    return ValidationFailed(_("type: must be one of %(choices)s") % {"choices": ", ".join(allowed)}, field="type")


def _lock_session(source, nonce: str) -> CheckoutSession:
    """The session of this form, locked; created (status ``charging``, not saved yet) when new."""
    is_link = isinstance(source, PaymentLink)
    for _try in range(3):
        session = CheckoutSession.objects.select_for_update().filter(nonce=nonce).first()
        if session is not None:
            break
        now = clock.now()
        session = CheckoutSession(nonce=nonce, payment_link=source if is_link else None,
                                  quote=None if is_link else source, currency=source.currency,
                                  created_at=now, updated_at=now)
        try:
            with transaction.atomic():
                session.save(force_insert=True)
            break
        except IntegrityError:  # the same form, submitted twice at the same moment: wait for the first
            continue  # (the lock above waits for its commit; it may also have been rolled back)
    else:
        raise Conflict(_("This purchase is already being processed."), code="payment_in_progress")
    if (session.payment_link_id, session.quote_id) != ((source.pk, None) if is_link else (None, source.pk)):
        raise ValidationFailed(_("nonce: this form belongs to another page"), field="nonce")
    return session


@sensitive_variables("details")
@transaction.atomic
def _start(source, nonce: str, buyer: dict, details: dict) -> tuple[CheckoutSession, CheckoutAttempt | None]:
    """Step 1: the session, the method saved at the processor, and an attempt carrying the key.

    Returns the attempt to charge, or None when this submit charges nothing: the session is
    already charging or completed (a double submit), or nothing is due today (completed here).
    Bad input raises ``ValidationFailed`` naming the field; nothing is kept then."""
    is_link = isinstance(source, PaymentLink)
    session = _lock_session(source, nonce)
    if session.status in ("charging", "completed") and session.attempts.exists():
        return session, None
    locked = (PaymentLink if is_link else Quote).objects.select_for_update().get(pk=source.pk)
    _check_source(locked)
    buyer = _clean_buyer(locked, buyer)
    allowed = _accepted(locked)
    kind = details.get("type") if isinstance(details, dict) else None
    if kind in METHODS and kind not in allowed:
        raise _type_error(allowed)
    plan = plan_for(locked)
    processor = get_processor()
    contact = (None if is_link else locked.contact) or crm.find_contact_by_email(buyer["email"])
    if contact is not None:
        customer_ref, new_customer = processor.ensure_customer(contact), False
    else:  # no contact until the charge succeeds: a processor customer of its own meanwhile
        customer_ref, new_customer = processor.create_customer(buyer["name"], buyer["email"]), True
    saved = payments.tokenize(processor, customer_ref, details)
    if saved.type not in allowed:  # a processor token (pm_…) turned out to be a kind the link refuses
        processor.forget_payment_method(saved.processor_ref)
        raise _type_error(allowed)
    n = session.attempts.count() + 1
    now = clock.now()
    attempt = CheckoutAttempt.objects.create(
        session=session, attempt_no=n, idempotency_key=f"rc-{install_id()}-cs-{session.pk}-{n}",
        amount=plan.due_now, currency=plan.currency, status="started" if plan.due_now > 0 else "saved",
        processor=processor.name, customer_ref=customer_ref, new_customer=new_customer,
        method_ref=saved.processor_ref, method_type=saved.type, method_brand=saved.brand,
        method_last4=saved.last4, method_exp_month=saved.exp_month, method_exp_year=saved.exp_year,
        method_fingerprint=saved.fingerprint, created_at=now)
    session.status, session.buyer, session.amount_due_now, session.currency = (
        "charging", buyer, plan.due_now, plan.currency)
    session.failure_code = session.failure_message = ""
    session.updated_at = now
    session.save()
    if plan.due_now == 0:  # nothing to charge today (every subscription starts later): buy now
        _complete(session, attempt, None)
        return session, None
    return session, attempt


def _request(attempt: CheckoutAttempt) -> ChargeRequest:
    return ChargeRequest(
        idempotency_key=attempt.idempotency_key, payment_method_ref=attempt.method_ref,
        customer_ref=attempt.customer_ref, amount=attempt.amount, currency=attempt.currency,
        description=f"Checkout {attempt.session_id}", metadata={"checkout_session": attempt.session_id})


@sensitive_variables("details")
def checkout(source, buyer: dict, details: dict, *, nonce: str | None = None, wait: float = 5.0) -> CheckoutResult:
    """Pay a payment link or a published quote (R-NEW-1).

    ``buyer``: name, email, language, billing_address / shipping_address (when the link asks);
    ``details``: card or bank account as for ``payments.services.add_payment_method``;
    ``nonce``: the form's one-time key. The same nonce again is the same purchase: while it is
    being charged, or once it is completed, nothing is charged again; after a decline it is the
    buyer's retry (a new attempt). Bad input raises ``ValidationFailed`` naming the field and
    saves nothing.
    """
    session, attempt = _start(source, nonce or new_nonce(), buyer, details)
    if attempt is not None:
        try:
            result = get_processor(attempt.processor).charge_many([_request(attempt)])[0]
        except Exception:  # committed first: settle_sessions looks the key up
            log.exception("Charging checkout session %s failed; settle_sessions will look its key up", session.pk)
        else:
            record_outcome(attempt.pk, result)
    else:
        # A double submit: wait for the first request to finish the purchase.
        deadline = time.monotonic() + wait
        while session.status == "charging" and time.monotonic() < deadline:
            time.sleep(0.2)
            session.refresh_from_db()
    return result_for(session)


def result_for(session: CheckoutSession) -> CheckoutResult:
    session.refresh_from_db()
    charge = session.attempts.order_by("-attempt_no").first()
    subs = list(Subscription.objects.filter(pk__in=session.subscription_ids).order_by("pk"))
    pays = list(Payment.objects.filter(pk__in=session.payment_ids).order_by("pk"))
    if session.status == "charging":
        return CheckoutResult("processing", session, [], charge)
    if session.status == "declined":
        return CheckoutResult("declined", session, [], charge, [], session.failure_message, session.failure_code)
    if charge is not None and charge.status == "pending":
        return CheckoutResult("pending", session, subs, charge, pays)
    return CheckoutResult("completed", session, subs, charge, pays)


# --- recording an outcome --------------------------------------------------------------------------


def record_outcome(attempt_id: int, result: ChargeResult, summary=None) -> None:
    """Step 3: record the processor's answer for a checkout attempt, exactly once. Idempotent."""
    with transaction.atomic():
        session_id = CheckoutAttempt.objects.filter(pk=attempt_id).values_list("session_id", flat=True).get()
        session = CheckoutSession.objects.select_for_update().get(pk=session_id)
        attempt = CheckoutAttempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.status == "started":
            if result.status == "failed":
                _declined(session, attempt, result)
            elif result.status in ("succeeded", "pending"):
                _complete(session, attempt, result, summary)
        elif attempt.status == "pending" and result.status in ("succeeded", "failed"):
            _settled(session, attempt, result, summary)
        elif attempt.status == "failed" and result.status in ("succeeded", "pending") \
                and attempt.failure_code == "abandoned":
            # Closed as never charged, yet the processor took the money: record what happened.
            log.warning("Checkout attempt %s was closed as never charged, but its charge %s is %s; recording it",
                        attempt.pk, result.charge_ref, result.status)
            if session.status != "completed":
                _complete(session, attempt, result, summary)


def take_checkout_results(results: list[ChargeResult], summary=None) -> list[ChargeResult]:
    """Called by ``engine.record_results``: records the outcomes whose key is a checkout attempt's
    and returns the others (cheap when there are none: only ``-cs-`` keys are looked up)."""
    keys = [r.idempotency_key for r in results if "-cs-" in r.idempotency_key and "/" not in r.idempotency_key]
    if not keys:
        return results
    with transaction.atomic():
        mine = dict(CheckoutAttempt.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", "pk"))
        for r in results:
            if r.idempotency_key in mine:
                record_outcome(mine[r.idempotency_key], r, summary)
    return [r for r in results if r.idempotency_key not in mine]


def _finish_attempt(attempt: CheckoutAttempt, status: str, result: ChargeResult | None) -> None:
    attempt.status = status
    if result is not None:
        attempt.charge_ref = result.charge_ref or attempt.charge_ref
        attempt.failure_code, attempt.failure_message = result.failure_code[:60], result.failure_message[:300]
    attempt.completed_at = clock.now()
    attempt.save()


def _declined(session: CheckoutSession, attempt: CheckoutAttempt, result: ChargeResult) -> None:
    """Nothing is bought: the session keeps the failed attempt, the method is detached."""
    _finish_attempt(attempt, "failed", result)
    session.status = "declined"
    session.failure_code = result.failure_code[:60] or "card_declined"
    session.failure_message = result.failure_message[:300]
    session.updated_at = clock.now()
    session.save()
    get_processor(attempt.processor).forget_payment_method(attempt.method_ref)


def _saved(attempt: CheckoutAttempt) -> SavedMethod:
    return SavedMethod(type=attempt.method_type, processor_ref=attempt.method_ref, brand=attempt.method_brand,
                       last4=attempt.method_last4, exp_month=attempt.method_exp_month,
                       exp_year=attempt.method_exp_year, fingerprint=attempt.method_fingerprint)


def _buyer_contact(session: CheckoutSession, source, is_link: bool):
    buyer = session.buyer
    contact = (None if is_link else source.contact) or crm.find_contact_by_email(buyer["email"])
    if contact is None:
        data = {"name": buyer["name"], "email": buyer["email"], "language": buyer.get("language") or "en"}
        data.update(buyer.get("billing_address") or {})
        contact = crm.create_contact(None, data)
    return contact


def _complete(session: CheckoutSession, attempt: CheckoutAttempt, result: ChargeResult | None,
              summary=None) -> None:
    """The purchase, in the caller's transaction: contact, method, subscriptions, invoices,
    payments, associations, receipts. ``result`` is None when nothing was due today."""
    from recur.subscriptions.services import create_subscription

    status = result.status if result is not None else "saved"
    _finish_attempt(attempt, status, result)
    source = session.payment_link or session.quote
    is_link = session.payment_link_id is not None
    day = attempt.created_at.astimezone(clock.account_zone()).date()  # the checkout's day, even if settled later
    plan = plan_for(source, today=day)
    if plan.due_now != attempt.amount:
        log.error("Checkout session %s: charged %s but the purchase now costs %s; booking the charge as made",
                  session.pk, attempt.amount, plan.due_now)
    contact = _buyer_contact(session, source, is_link)
    if attempt.new_customer and not payments.bind_customer(contact, attempt.processor, attempt.customer_ref):
        log.warning("Contact %s already has another %s customer; checkout %s saved its method on %s",
                    contact.pk, attempt.processor, session.pk, attempt.customer_ref)
    method = payments.keep_saved_method(None, contact, attempt.processor, _saved(attempt))
    deal_ids = [d.pk for d in records.associated(source, "deal")] if is_link else \
        ([source.deal_id] if source.deal_id else [])
    deals = [records.get_record("deal", d) for d in deal_ids]
    company = records.associated(contact, "company").first()
    buyer = session.buyer
    subs, parts = [], []  # parts: the invoices that share the charge
    one_time = [(it, None, None) for it in plan.one_time]
    for g in plan.groups:
        sub = create_subscription(None, {
            "contact_id": contact.pk, "company_id": company.pk if company else None, "collection": "auto_charge",
            "payment_method_id": method.pk, "accepted_payment_methods": _accepted(source),
            "billing_address": buyer.get("billing_address") or {},
            "shipping_address": buyer.get("shipping_address") or {}, "deal_ids": deal_ids,
            "quote_id": None if is_link else source.pk,
            "line_items": [dict(it, billing_start_date=g.start, billing_start_delay_days=0,
                                billing_start_delay_months=0) for it in g.items],
        }, allow_backdate=True)
        if is_link:
            records.associate(None, sub, source)
        if g.starts_now and result is not None:
            # One-time items are billed once, on the first invoice of the first subscription that
            # starts today (as Stripe does): a failed debit's dunning then collects them too.
            parts.append(_first_period(sub, g, contact, buyer, one_time))
            one_time = []
            sub.refresh_from_db()
        subs.append(sub)
    if one_time and result is not None:  # no subscription starts today: an invoice of their own
        parts.append(_invoice(contact, buyer, plan.currency, one_time, None, None, accept_online=True))
    invoices = parts
    for inv in invoices:
        for other in [source, *deals]:
            records.associate(None, inv, other)
        if inv.subscription_id:
            records.associate(None, inv, next(s for s in subs if s.pk == inv.subscription_id))
    pays = _book(attempt, result, invoices, method, summary) if result is not None else []
    for p in pays:
        if p.subscription_id:
            records.associate(None, next(s for s in subs if s.pk == p.subscription_id), p)
    if is_link and source.allow_create_deals and not plan.recurring:
        deal = crm.create_deal(None, {"name": f"{source.name} – {contact.name}"[:200], "amount": attempt.amount,
                                      "currency": plan.currency, "stage": "closed_won", "close_date": day})
        records.associate(None, deal, contact)
        records.associate(None, deal, source)
        for inv in invoices:
            records.associate(None, deal, inv)
    if not is_link:
        quote = Quote.objects.select_for_update().get(pk=source.pk)
        records.update(quote, None, {"status": "accepted" if status == "pending" else "paid"})
    if status == "succeeded":
        _receipts(session, attempt, contact, subs, pays)
        if is_link and not source.save_payment_method and not plan.recurring:
            payments.remove_payment_method(None, method)  # "save payment method" off: used once
    session.status = "completed"
    session.contact, session.payment_method = contact, method
    session.subscription_ids = [s.pk for s in subs]
    session.invoice_ids = [i.pk for i in invoices]
    session.payment_ids = [p.pk for p in pays]
    session.updated_at = clock.now()
    session.save()


def _first_period(sub: Subscription, g: Group, contact, buyer: dict, one_time: list[tuple]) -> Invoice:
    """Period 0 of a subscription that starts today, paid by the checkout: its own billing cycle and
    invoice (the billing run never bills that period again: unique cycle per period), with the
    purchase's one-time items when ``one_time`` holds them."""
    start, end = sub.period(0)
    cycle = BillingCycle.objects.create(subscription=sub, period_index=0, period_start=start, period_end=end,
                                        amount=sub.amount, currency=sub.currency,
                                        status="open" if sub.amount else "paid", created_at=clock.now())
    fixed = sub.fixed_payments
    Subscription.objects.filter(pk=sub.pk).update(
        billed_through=0, next_payment_date=None if fixed is not None and fixed <= 1 else sub.period_start(1),
        updated_at=clock.now())
    return _invoice(contact, buyer, sub.currency, [(it, start, end) for it in g.items] + one_time, sub, cycle,
                    accept_online=sub.accept_online_payments)


def _invoice(contact, buyer: dict, currency: str, lines: list[tuple], sub, cycle, *, accept_online: bool) -> Invoice:
    from recur.billing.engine import _allocate_numbers

    today = clock.today()
    amounts = [line_amounts(it["unit_price"], it.get("quantity", 1), it.get("discount_percent"), None,
                            it.get("tax_rate")) for it, _, _ in lines]
    total = sum(a.total for a in amounts)
    address = buyer.get("billing_address") or {
        f: getattr(contact, f) for f in contact.ADDRESS_FIELDS if getattr(contact, f)}
    number = _allocate_numbers({today.year: 1})[today.year][0]
    invoice = records.create(Invoice, None, {
        "number": number, "subscription": sub, "cycle": cycle, "contact": contact,
        "status": "open" if total else "paid", "issue_date": today, "due_date": today,
        "payment_terms": "due_on_receipt", "collection": "auto_charge", "accept_online_payments": accept_online,
        "currency": currency, "subtotal": sum(a.net for a in amounts), "tax": sum(a.tax for a in amounts),
        "total": total, "billing_address": address, "paid_at": None if total else clock.now(),
    })
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=invoice, position=i, name=it["name"], quantity=it.get("quantity", 1),
                    unit_price=it["unit_price"], discount=a.discount, tax_rate=it.get("tax_rate") or 0, tax=a.tax,
                    total=a.total, period_start=start, period_end=end)
        for i, ((it, start, end), a) in enumerate(zip(lines, amounts))
    ])
    return invoice


def _book(attempt: CheckoutAttempt, result: ChargeResult, invoices: list[Invoice], method, summary) -> list[Payment]:
    """Each invoice's share of the one charge: an attempt ``<key>/<i>`` per invoice, recorded by the
    billing engine as any charge of that invoice (payment, invoice, cycle, subscription)."""
    from recur.billing import engine

    shares = [inv for inv in invoices if inv.total > 0]
    if sum(inv.total for inv in shares) != attempt.amount:
        log.error("Checkout attempt %s: invoices total %s, charge %s", attempt.pk,
                  sum(inv.total for inv in shares), attempt.amount)
    now = clock.now()
    rows = PaymentAttempt.objects.bulk_create([
        PaymentAttempt(invoice=inv, cycle_id=inv.cycle_id, attempt_no=1,
                       idempotency_key=f"{attempt.idempotency_key}/{i}", payment_method=method, amount=inv.total,
                       currency=inv.currency, created_at=now)
        for i, inv in enumerate(shares, start=1)])
    engine.record_shared_charge([
        ChargeResult(r.idempotency_key, result.status, result.charge_ref, result.failure_code, result.failure_message)
        for r in rows], summary)
    return list(Payment.objects.filter(attempt__idempotency_key__in=[r.idempotency_key for r in rows])
                .order_by("pk"))


def _parts(attempt: CheckoutAttempt):
    return PaymentAttempt.objects.filter(idempotency_key__startswith=f"{attempt.idempotency_key}/")


def _settled(session: CheckoutSession, attempt: CheckoutAttempt, result: ChargeResult, summary=None) -> None:
    """A pending bank debit settled or failed: every part at once, one e-mail for the charge."""
    from recur.billing import engine

    _finish_attempt(attempt, result.status, result)
    keys = list(_parts(attempt).values_list("idempotency_key", flat=True))
    engine.record_shared_charge([ChargeResult(k, result.status, result.charge_ref, result.failure_code,
                                              result.failure_message) for k in keys], summary)
    contact = session.contact
    subs = list(Subscription.objects.filter(pk__in=session.subscription_ids).order_by("pk"))
    pays = list(Payment.objects.filter(pk__in=session.payment_ids).order_by("pk"))
    if contact is None or not pays:
        return
    if result.status == "succeeded":
        _receipts(session, attempt, contact, subs, pays)
    else:
        _failure_emails(session, attempt, result, contact, subs, pays)


# --- e-mails (R-SIGN-1): one set per charge, however many invoices it paid -------------------------


def _purchase_name(session: CheckoutSession, subs: list[Subscription], pays: list[Payment]) -> str:
    if len(subs) == 1 and len(pays) <= 1:
        return subs[0].name
    source = session.payment_link or session.quote
    return (source.name if session.payment_link_id else source.title) if source else subs[0].name


def _context(session, attempt, contact, subs, pays) -> dict:
    from recur.notifications import services as outbox

    ctx = {"subscription_name": _purchase_name(session, subs, pays), "customer_name": contact.name,
           "customer_email": contact.email or "", "amount": outbox.money(attempt.amount, attempt.currency),
           "payment_method": {"type": attempt.method_type, "brand": attempt.method_brand,
                              "last4": attempt.method_last4}}
    if len(pays) == 1 and pays[0].period_start:
        ctx.update(period_start=pays[0].period_start, period_end=pays[0].period_end)
    return ctx


def _receipts(session, attempt, contact, subs, pays) -> None:
    """Buyer receipt, and the seller receipt to every super admin (R-SIGN-1), once per charge
    (the dedupe keys are those the engine would use for the first payment)."""
    from recur.notifications import services as outbox

    first = pays[0].pk if pays else None
    if first is None:
        return
    ctx = {**_context(session, attempt, contact, subs, pays), "paid_on": clock.today()}
    email = contact.email or session.buyer.get("email")
    if email:
        outbox.queue_email("payment_receipt", email, to_name=contact.name, language=contact.language or "en",
                           context=ctx, record=("payment", first), dedupe_key=outbox.record_key("receipt", first))
    admin = {**ctx, **_subscription_link(subs)}
    outbox.notify_admins("admin_payment_succeeded", context=admin, record=("payment", first),
                         dedupe_key=outbox.record_key("admin_ok", first))
    outbox.notify_admins("seller_receipt", context=admin, record=("payment", first),
                         dedupe_key=outbox.record_key("seller_receipt", first))


def _subscription_link(subs) -> dict:
    """The admins' e-mails link to the (first) subscription bought, if any."""
    from recur.notifications import services as outbox

    return {"url": outbox.seller_url("subscription_detail", subs[0].pk)} if subs else {}


def _failure_emails(session, attempt, result: ChargeResult, contact, subs, pays) -> None:
    from recur.checkout.links import invoice_url, update_payment_method_url
    from recur.notifications import services as outbox

    first = pays[0].pk
    retry = BillingCycle.objects.filter(subscription_id__in=[s.pk for s in subs], period_index=0) \
        .exclude(next_retry_on=None).order_by("next_retry_on").values_list("next_retry_on", flat=True).first()
    ctx = {**_context(session, attempt, contact, subs, pays), "failed_on": clock.today(),
           "reason": result.failure_message, "reason_code": result.failure_code, "next_retry_on": retry,
           # No subscription to update: the invoice's own page takes another card or account.
           "update_url": update_payment_method_url(subs[0].pk) if subs else invoice_url(pays[0].invoice_id)}
    email = contact.email or session.buyer.get("email")
    if email:
        outbox.queue_email("payment_failed", email, to_name=contact.name, language=contact.language or "en",
                           context=ctx, record=("payment", first), dedupe_key=outbox.record_key("failed", first))
    buyer_only = ("update_url", "period_start", "period_end", "customer_email")
    admin = {**{k: v for k, v in ctx.items() if k not in buyer_only}, **_subscription_link(subs)}
    outbox.notify_admins("admin_payment_failed", context=admin, record=("payment", first),
                         dedupe_key=outbox.record_key("admin_failed", first))


# --- settling what a crash left open ---------------------------------------------------------------


def settle_session(session_id: int) -> CheckoutResult:
    """The confirmation page: a session still charging whose key the processor knows is recorded now."""
    attempt = CheckoutAttempt.objects.filter(session_id=session_id, status="started").first()
    if attempt is not None and clock.now() - attempt.created_at > dt.timedelta(seconds=5):
        _settle(attempt)
    return result_for(CheckoutSession.objects.get(pk=session_id))


def _settle(attempt: CheckoutAttempt) -> bool:
    """Look the key up and record what the processor says. Never charges: a key still unknown after
    ``ABANDON_AFTER`` was never charged, and the attempt is closed so the buyer can try again."""
    try:
        result = get_processor(attempt.processor).lookup(attempt.idempotency_key)
    except Exception:
        log.exception("Looking up checkout attempt %s failed; the next run tries again", attempt.pk)
        return False
    if result is None or result.status == "pending" and attempt.status == "pending":
        if result is None and attempt.status == "started" and clock.now() - attempt.created_at >= ABANDON_AFTER:
            record_outcome(attempt.pk, ChargeResult(
                attempt.idempotency_key, "failed", failure_code="abandoned",
                failure_message="The payment could not be completed. You have not been charged."))
            return True
        return False
    record_outcome(attempt.pk, result)
    return True


def settle_sessions(older_than_seconds: float = 60) -> int:
    """Finish purchases whose charge outcome was not recorded by the request that made it (a crash
    between charge and recording), and look up pending bank debits now and then. Returns how
    many attempts were settled. Called by every billing run."""
    global _last_reconcile
    now = clock.now()
    cutoff = now - dt.timedelta(seconds=older_than_seconds)
    done = 0
    for attempt in CheckoutAttempt.objects.filter(status="started", created_at__lte=cutoff).order_by("pk"):
        done += _settle(attempt)
    if _last_reconcile is None or now - _last_reconcile >= RECONCILE_EVERY:
        _last_reconcile = now
        for attempt in CheckoutAttempt.objects.filter(status="pending", created_at__lte=cutoff).order_by("pk"):
            done += _settle(attempt)
    return done
