"""Payment links and the hosted checkout (R-NEW-1, R-NEW-2, R-SIGN-1..7).

A buyer pays a payment link (or a published quote) on a hosted page. One
purchase makes one subscription per R-SIGN-4 group of recurring items and
charges, at once, everything due today: the first period of each subscription
that starts today, plus the one-time items.

Money safety — the charge comes BEFORE the subscriptions:

1. ``_begin`` (one transaction): the ``CheckoutSession`` row is created with
   the form's unique ``nonce`` (a double submit finds the same row: one
   purchase). The contact is found by e-mail or created (the processor needs a
   customer to save a method with), the payment method is saved, and a
   *checkout invoice* for everything due today is created with a
   ``PaymentAttempt`` carrying the idempotency key ``rc-<install>-co-<session>-1``.
   Commit — the attempt is on disk before the processor is called (rule 2).
2. ``engine.charge_attempts`` charges it and records the outcome (payment row,
   invoice paid, buyer receipt) in its own transaction, as for a hosted
   invoice. A crash here leaves the attempt ``started``; the billing run's
   recovery settles it with the same key, and ``settle_sessions`` (called on
   every page view of the session and by ``settle_sessions()`` from a worker)
   then finishes the purchase.
3. ``_finish`` (one transaction, session row locked): on a decline nothing of
   the purchase is kept — the checkout invoice is voided (invoice numbers stay
   gapless), the saved method is removed and no subscription exists; the buyer
   sees why and retries with a new form (new nonce). Only a contact that did
   not exist before stays (it was needed to talk to the processor). On success,
   or a bank debit that is pending (R-SIGN-5), the subscriptions are created
   (``subscriptions.services.create_subscription``, automatic collection, the
   saved method, associated with the paying contact and the link's or quote's
   deals, R-SIGN-2) and their first period is recorded as covered by the
   checkout charge: a billing cycle for period 0 and ``billed_through = 0``, so
   the billing run never bills it again (unique cycle per period, rule 1). The
   checkout invoice and its payment belong to the first of them; a pending
   debit that later fails therefore makes that subscription Unpaid and starts
   dunning, through the ordinary engine path.

A subscription that starts later (fixed date or delay, R-SIGN-7) is created
Scheduled and nothing of it is charged now. Recurring payments never create a
deal (R-SIGN-3); a link with ``allow_create_deals`` makes one only for a
purchase without recurring items.

Sign-up e-mails (R-SIGN-1): the engine's recorder queues the buyer receipt; the
seller receipt to every super admin is queued here with the engine's dedupe key
(``seller_receipt:<payment>``), so however the payment is recorded (now, or
later for a bank debit) it is sent exactly once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
import time
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from recur.billing.engine import install_id
from recur.billing.models import BillingCycle, Invoice, InvoiceLine, Payment, PaymentAttempt
from recur.checkout.models import CheckoutSession, PaymentLink, PaymentLinkItem
from recur.core import account, clock, records
from recur.core.errors import Conflict, NotFound, ServiceError, ValidationFailed
from recur.core.money import line_amounts
from recur.crm import quotes as quote_services
from recur.crm import services as crm
from recur.crm.models import Quote
from recur.payments import services as payments
from recur.subscriptions import grouping, schedule
from recur.subscriptions.models import Subscription

log = logging.getLogger("recur.checkout")

METHODS = ("card", "bank_account")
ITEM_FIELDS = quote_services.LINE_FIELDS


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
        raise ValidationFailed(f"{name}: must be true or false", field=name)
    return value


@transaction.atomic
def create_payment_link(actor, data: dict[str, Any]) -> PaymentLink:
    """``data``: name, line_items (minor units, as for quotes), accepted_payment_methods,
    collect_billing_address, collect_shipping_address, save_payment_method, allow_create_deals, deal_ids."""
    raw = data.get("line_items") or []
    if not raw:
        raise ValidationFailed("line_items: a payment link needs at least one line item", field="line_items")
    items = quote_services.clean_line_items(raw)
    try:
        grouping.split_recurring(items)  # the R-SIGN-4 key must be computable for every recurring item
    except ValueError as exc:
        field = str(exc).split(":", 1)[0]
        raise ValidationFailed(f"line_items: {exc}", field=f"line_items.{field}") from None
    methods = data.get("accepted_payment_methods")
    methods = account.default_payment_methods() if methods is None else list(methods)
    if not methods or any(m not in METHODS for m in methods):
        raise ValidationFailed("accepted_payment_methods: one or more of card, bank_account",
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
    return f"{settings.RECUR_BASE_URL.rstrip('/')}/billing/pay/{link.token}/"


def link_for_token(token: str) -> PaymentLink:
    link = PaymentLink.objects.filter(token=token).first()
    if link is None:
        raise NotFound("This payment link does not exist.")
    return link


def quote_for_token(token: str) -> Quote:
    quote = Quote.objects.select_related("contact", "deal").filter(public_token=token).first() if token else None
    if quote is None:
        raise NotFound("This quote does not exist.")
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

    @property
    def starts_now(self) -> bool:
        return self.start <= clock.today()


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


def plan_for(source) -> Plan:
    """Groups and one-time items of a payment link or a quote, with today's start dates."""
    items = source_items(source)
    groups, one_time = grouping.split_recurring(items)
    today = clock.today()
    out = []
    for group in groups:
        freq, terms, fixed, days, months, n = grouping.grouping_key(group[0])
        start = today if fixed is not None and fixed < today else schedule.start_date(today, fixed, days, months)
        out.append(Group(group, freq, terms, n, start, sum(_total(it) for it in group)))
    return Plan(source.currency, out, one_time)


# --- the checkout (R-NEW-1, R-SIGN-1..7) -----------------------------------------------------------


@dataclasses.dataclass
class CheckoutResult:
    """``status``: completed (paid, or nothing due now), pending (bank debit), declined, processing."""

    status: str
    session: CheckoutSession
    subscriptions: list[Subscription]
    payment: Payment | None = None
    reason: str = ""
    failure_code: str = ""

    @property
    def pending(self) -> bool:
        return self.payment is not None and self.payment.status == "pending"



def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _clean_buyer(source, buyer: dict) -> dict:
    name = (buyer.get("name") or "").strip()
    if not name:
        raise ValidationFailed("name: enter your name", field="name")
    email = (buyer.get("email") or "").strip().lower()
    if not email:
        raise ValidationFailed("email: enter your e-mail address", field="email")
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
            raise ValidationFailed(f"{field}.{k}: this field is required", field=f"{field}.{k}")
    return {k: v for k, v in address.items() if v}


def _accepted(source) -> list[str]:
    if isinstance(source, PaymentLink):
        return [m for m in METHODS if m in (source.accepted_payment_methods or [])] or list(METHODS)
    return list(METHODS)


def _check_source(source) -> None:
    if isinstance(source, PaymentLink):
        if not source.active:
            raise Unavailable("This payment link is no longer active.")
        for it in source.items.select_related("product"):
            if it.product is not None and it.product.archived:
                raise Unavailable(f"line_items: the product {it.product.name!r} is no longer sold.",
                                  field="line_items")
    else:
        if not quote_open(source):
            raise Unavailable("This quote cannot be accepted.", field="status")


def _contact(buyer: dict):
    contact = crm.find_contact_by_email(buyer["email"])
    if contact is not None:
        return contact, False
    data = {"name": buyer["name"], "email": buyer["email"], "language": buyer["language"]}
    data.update(buyer.get("billing_address") or {})
    return crm.create_contact(None, data), True


@sensitive_variables("details")
@transaction.atomic
def _begin(source, nonce: str, buyer: dict, details: dict) -> tuple[CheckoutSession, bool]:
    """Step 1: the session, the contact, the saved method, the checkout invoice and its attempt."""
    is_link = isinstance(source, PaymentLink)
    existing = CheckoutSession.objects.select_for_update().filter(nonce=nonce).first()
    if existing is not None:
        if (existing.payment_link_id, existing.quote_id) != ((source.pk, None) if is_link else (None, source.pk)):
            raise ValidationFailed("nonce: this form belongs to another page", field="nonce")
        return existing, False
    locked = (PaymentLink if is_link else Quote).objects.select_for_update().get(pk=source.pk)
    _check_source(locked)
    buyer = _clean_buyer(locked, buyer)
    kind = details.get("type") if isinstance(details, dict) else None
    allowed = _accepted(locked)
    if kind not in allowed:
        raise ValidationFailed(f"type: must be one of {', '.join(allowed)}", field="type")
    plan = plan_for(locked)
    now = clock.now()
    try:
        with transaction.atomic():
            session = CheckoutSession.objects.create(
                nonce=nonce, payment_link=locked if is_link else None, quote=None if is_link else locked,
                currency=plan.currency, amount_due_now=plan.due_now, buyer=buyer, created_at=now, updated_at=now)
    except IntegrityError:  # the same form, submitted twice at the same moment
        raise Conflict("This purchase is already being processed.", code="payment_in_progress") from None
    if is_link:
        contact, _ = _contact(buyer)
    else:
        contact = locked.contact or _contact(buyer)[0]
    method = payments.add_payment_method(None, contact, details)
    session.contact, session.payment_method = contact, method
    if plan.due_now > 0:
        session.invoice, session.attempt = _checkout_invoice(session, locked, plan, contact, method)
    session.save()
    return session, True


def _checkout_invoice(session, source, plan: Plan, contact, method) -> tuple[Invoice, PaymentAttempt]:
    from recur.billing.engine import _allocate_numbers

    today = clock.today()
    lines = []  # (item, period_start, period_end)
    for g in plan.groups:
        if g.starts_now:
            end = schedule.period(g.start, g.frequency, 0)[1]
            lines += [(it, g.start, end) for it in g.items]
    lines += [(it, None, None) for it in plan.one_time]
    amounts = [line_amounts(it["unit_price"], it.get("quantity", 1), it.get("discount_percent"), None,
                            it.get("tax_rate")) for it, _, _ in lines]
    buyer_address = session.buyer.get("billing_address") or {
        f: getattr(contact, f) for f in contact.ADDRESS_FIELDS if getattr(contact, f)}
    number = _allocate_numbers({today.year: 1})[today.year][0]
    invoice = records.create(Invoice, None, {
        "number": number, "contact": contact, "status": "open", "issue_date": today, "due_date": today,
        "payment_terms": "due_on_receipt", "collection": "auto_charge", "accept_online_payments": False,
        "currency": plan.currency, "subtotal": sum(a.net for a in amounts), "tax": sum(a.tax for a in amounts),
        "total": sum(a.total for a in amounts), "billing_address": buyer_address,
    })
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=invoice, position=i, name=it["name"], quantity=it.get("quantity", 1),
                    unit_price=it["unit_price"], discount=a.discount, tax_rate=it.get("tax_rate") or 0, tax=a.tax,
                    total=a.total, period_start=start, period_end=end)
        for i, ((it, start, end), a) in enumerate(zip(lines, amounts))
    ])
    attempt = PaymentAttempt.objects.create(
        invoice=invoice, attempt_no=1, idempotency_key=f"rc-{install_id()}-co-{session.pk}-1", payment_method=method,
        amount=invoice.total, currency=invoice.currency, created_at=clock.now(), **_BUYER_INITIATED)
    return invoice, attempt


# The buyer's own try, shown on the page: the engine sends no "payment failed" e-mails for it.
_BUYER_INITIATED = {"buyer_initiated": True} if hasattr(PaymentAttempt, "buyer_initiated") else {}


@sensitive_variables("details")
def checkout(source, buyer: dict, details: dict, *, nonce: str | None = None, wait: float = 5.0) -> CheckoutResult:
    """Pay a payment link or a published quote (R-NEW-1).

    ``buyer``: name, email, language, billing_address / shipping_address (when the link asks);
    ``details``: card or bank account as for ``payments.services.add_payment_method``;
    ``nonce``: the form's one-time key (a second submit of the same form returns the first
    purchase). Bad input raises ``ValidationFailed`` naming the field and saves nothing.
    """
    from recur.billing import engine

    session, started = _begin(source, nonce or new_nonce(), buyer, details)
    if started and session.attempt_id:
        try:
            engine.charge_attempts([session.attempt_id])
        except Exception:  # committed first: recovery charges it again with the same key
            log.exception("Charging checkout session %s failed; recovery will settle it", session.pk)
    elif not started:
        # A double submit: wait for the first request to finish the purchase.
        deadline = time.monotonic() + wait
        while session.status == "charging" and _attempt_status(session) == "started" \
                and time.monotonic() < deadline:
            time.sleep(0.2)
            session.refresh_from_db()
    return finish(session.pk)


def _attempt_status(session: CheckoutSession) -> str | None:
    if not session.attempt_id:
        return None
    return PaymentAttempt.objects.filter(pk=session.attempt_id).values_list("status", flat=True).first()


def finish(session_id: int) -> CheckoutResult:
    """Step 3: make the purchase (or drop it) once the charge's outcome is known. Idempotent."""
    with transaction.atomic():
        session = CheckoutSession.objects.select_for_update().get(pk=session_id)
        if session.status == "charging":
            status = _attempt_status(session)
            if status == "failed":
                _decline(session)
            elif status in (None, "succeeded", "pending"):
                _complete(session)
    return result_for(session)


def result_for(session: CheckoutSession) -> CheckoutResult:
    session.refresh_from_db()
    subs = list(Subscription.objects.filter(pk__in=session.subscription_ids).order_by("pk"))
    payment = Payment.objects.filter(attempt_id=session.attempt_id).first() if session.attempt_id else None
    if session.status == "charging":
        return CheckoutResult("processing", session, subs, payment)
    if session.status == "declined":
        return CheckoutResult("declined", session, [], payment, session.failure_message, session.failure_code)
    if payment is not None and payment.status == "pending":
        return CheckoutResult("pending", session, subs, payment)
    return CheckoutResult("completed", session, subs, payment)


def settle_sessions(older_than_seconds: float = 60) -> int:
    """Finish purchases whose charge was settled after the request that started them died."""
    cutoff = clock.now() - dt.timedelta(seconds=older_than_seconds)
    done = 0
    for sid in CheckoutSession.objects.filter(status="charging", created_at__lte=cutoff).values_list("pk", flat=True):
        if finish(sid).status != "processing":
            done += 1
    return done


def _decline(session: CheckoutSession) -> None:
    attempt = PaymentAttempt.objects.get(pk=session.attempt_id)
    if session.invoice_id:
        invoice = Invoice.objects.select_for_update().get(pk=session.invoice_id)
        if invoice.status == "open":
            records.update(invoice, None, {"status": "void"})
    if session.payment_method_id:
        payments.remove_payment_method(None, session.payment_method)
    # The buyer sees the decline on the page and tries again: the engine's "payment failed"
    # e-mails (buyer and admins) about a purchase that was never made are withdrawn while queued.
    from recur.notifications.models import OutboxMessage

    pid = Payment.objects.filter(attempt_id=attempt.pk).values_list("pk", flat=True).first()
    if pid is not None:
        OutboxMessage.objects.filter(status=OutboxMessage.QUEUED, record_type="payment", record_id=pid,
                                     kind__in=("payment_failed", "admin_payment_failed")).delete()
    session.status = "declined"
    session.failure_code, session.failure_message = attempt.failure_code, attempt.failure_message
    session.updated_at = clock.now()
    session.save()


def _complete(session: CheckoutSession) -> None:
    from recur.notifications import services as outbox
    from recur.subscriptions.services import create_subscription

    source = session.payment_link or session.quote
    is_link = session.payment_link_id is not None
    plan = plan_for(source)
    contact = session.contact
    if is_link:
        deal_ids = [d.pk for d in records.associated(source, "deal")]
    else:
        deal_ids = [source.deal_id] if source.deal_id else []
    company = records.associated(contact, "company").first()
    payment = Payment.objects.filter(attempt_id=session.attempt_id).first() if session.attempt_id else None
    paid = payment is not None and payment.status == "succeeded"
    today = clock.today()
    subs = []
    for g in plan.groups:
        sub = create_subscription(None, {
            "contact_id": contact.pk, "company_id": company.pk if company else None, "collection": "auto_charge",
            "payment_method_id": session.payment_method_id, "accepted_payment_methods": _accepted(source),
            "billing_address": session.buyer.get("billing_address") or {}, "deal_ids": deal_ids,
            "quote_id": None if is_link else source.pk,
            "line_items": [dict(it, billing_start_date=g.start if g.start > today else None,
                                billing_start_delay_days=0, billing_start_delay_months=0) for it in g.items],
        }, allow_backdate=False)
        if is_link:
            records.associate(None, sub, source)
        if g.starts_now and session.invoice_id:
            _cover_first_period(sub, session, payment, paid, first=not any(s for s in subs if s.billed_through == 0))
            sub.refresh_from_db()
        subs.append(sub)
    if session.invoice_id:
        invoice = Invoice.objects.get(pk=session.invoice_id)
        for other in [source, *[records.get_record("deal", d) for d in deal_ids]]:
            records.associate(None, invoice, other)
        for sub in subs:
            records.associate(None, invoice, sub)
    if is_link and source.allow_create_deals and not plan.recurring:
        deal = crm.create_deal(None, {"name": f"{source.name} – {contact.name}"[:200], "amount": plan.due_now,
                                      "currency": plan.currency, "stage": "closed_won", "close_date": today})
        records.associate(None, deal, contact)
        records.associate(None, deal, source)
        if session.invoice_id:
            records.associate(None, deal, Invoice.objects.get(pk=session.invoice_id))
    if not is_link:
        quote = Quote.objects.select_for_update().get(pk=source.pk)
        records.update(quote, None, {"status": "paid" if paid or not session.invoice_id else "accepted"})
    if paid:
        payment.refresh_from_db()
        ctx = {"subscription_name": subs[0].name if subs else session.invoice.number,
               "customer_name": contact.name, "customer_email": contact.email or "",
               "amount": outbox.money(payment.amount, payment.currency), "paid_on": today,
               "period_start": payment.period_start, "period_end": payment.period_end,
               "payment_method": _method_ctx(session.payment_method)}
        outbox.notify_admins("seller_receipt", context=ctx, record=("payment", payment.pk),
                             dedupe_key=f"seller_receipt:{payment.pk}")
    session.status = "completed"
    session.subscription_ids = [s.pk for s in subs]
    session.updated_at = clock.now()
    session.save()


def _method_ctx(pm) -> dict | None:
    return {"type": pm.type, "brand": pm.brand, "last4": pm.last4} if pm else None


def _cover_first_period(sub: Subscription, session: CheckoutSession, payment: Payment | None, paid: bool,
                        first: bool) -> None:
    """Period 0 was charged on the checkout invoice: record it so the billing run never bills it."""
    start, end = sub.period(0)
    cycle = BillingCycle.objects.create(subscription=sub, period_index=0, period_start=start, period_end=end,
                                        amount=sub.amount, currency=sub.currency, status="paid" if paid else "open",
                                        attempts=1, created_at=clock.now())
    fixed = sub.fixed_payments
    nxt = None if fixed is not None and fixed <= 1 else sub.period_start(1)
    fields = {"billed_through": 0, "next_payment_date": nxt, "updated_at": clock.now()}
    if paid:
        fields.update(payments_made=1, total_paid=sub.amount, last_payment_date=clock.today())
    Subscription.objects.filter(pk=sub.pk).update(**fields)
    if first:
        # The checkout invoice and its payment belong to the first subscription: a pending debit
        # that settles (or fails) later is recorded on it by the billing engine.
        Invoice.objects.filter(pk=session.invoice_id).update(subscription=sub, cycle=cycle)
        PaymentAttempt.objects.filter(pk=session.attempt_id).update(cycle=cycle)
        if payment is not None:
            Payment.objects.filter(pk=payment.pk).update(subscription=sub, period_start=start, period_end=end)
    if payment is not None:
        records.associate(None, sub, payment)
