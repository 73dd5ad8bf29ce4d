"""The billing run (R-BILL-1, R-BILL-6, R-BILL-8; DESIGN "Money safety rules").

Billing is a pure function of (subscription, what was billed already, today):
``schedule.due_periods`` says which periods are due; the run creates exactly
those cycles. Each batch goes through three steps:

1. **issue** (one transaction): claim due subscriptions (``FOR UPDATE SKIP
   LOCKED`` on PostgreSQL; SQLite serialises writers), create the billing
   cycles — unique per (subscription, period) — their invoices with gapless
   numbers, and, for automatic collection, a payment attempt carrying the
   idempotency key. Commit.
2. **charge**: ask the processor to charge the committed attempts. The
   processor never moves money twice for one key.
3. **record** (one transaction): lock the attempts still ``started`` and record
   each outcome once: payments, invoice and cycle status, subscription
   properties and status, e-mails in the outbox.

A crash between 1 and 3 leaves attempts ``started``; the next run charges them
again with the same key, which settles them without a second charge.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections import defaultdict

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min

from recur.billing.models import BillingCycle, Invoice, InvoiceLine, InvoiceSequence, Payment, PaymentAttempt
from recur.core import clock
from recur.core.money import format_amount, line_amounts
from recur.notifications import services as outbox
from recur.payments.processor import ChargeRequest, ChargeResult, get_processor
from recur.subscriptions import status as rules
from recur.subscriptions.models import BILLABLE, PAYMENT_TERM_DAYS, Subscription

log = logging.getLogger("recur.billing")

BATCH = 1000


def retry_days() -> list[int]:
    """Days after a failure on which a charge is retried (R-BILL-6; default 3, 5, 7)."""
    return list(getattr(settings, "RECUR_DUNNING_RETRY_DAYS", [3, 5, 7]))


def dunning_policy() -> str:
    """What happens after the last retry fails: "stay_past_due" or "cancel"."""
    return getattr(settings, "RECUR_DUNNING_FINAL_ACTION", "stay_past_due")


def _install_id() -> str:
    return hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest()[:8]


def idempotency_key(subscription_id: int, period_index: int, attempt_no: int) -> str:
    """Derived from (subscription, period, attempt): the same try always has the same key."""
    return f"rc-{_install_id()}-{subscription_id}-{period_index}-{attempt_no}"


@dataclasses.dataclass
class Summary:
    charged: int = 0
    failed: int = 0
    pending: int = 0
    invoices_issued: int = 0
    emails_queued: int = 0
    expired: int = 0
    canceled: int = 0

    def add(self, other: "Summary") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def work(self) -> int:
        return sum(dataclasses.asdict(self).values())


# --- step 1: issue -------------------------------------------------------------------


def _claim(qs, limit: int):
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return list(qs[:limit])


def _allocate_numbers(counts: dict[int, int]) -> dict[int, list[str]]:
    """Gapless invoice numbers per year: the sequence row is locked until commit."""
    out = {}
    for year, n in sorted(counts.items()):
        InvoiceSequence.objects.get_or_create(year=year)
        seq = InvoiceSequence.objects.select_for_update().get(year=year)
        first = seq.last + 1
        InvoiceSequence.objects.filter(year=year).update(last=seq.last + n)
        out[year] = [f"{year}-{i:06d}" for i in range(first, first + n)]
    return out


def _issue_batch(today: dt.date, limit: int, only: list[int] | None, summary: Summary) -> list[int]:
    """Step 1 for one batch; returns the ids of the attempts it created."""
    now = clock.now()
    with transaction.atomic():
        qs = Subscription.objects.filter(next_payment_date__lte=today, status__in=BILLABLE)
        if only is not None:
            qs = qs.filter(pk__in=only)
        subs = _claim(qs.order_by("next_payment_date", "id").select_related("contact"), limit)
        if not subs:
            return []
        items = defaultdict(list)
        from recur.subscriptions.models import SubscriptionItem

        for item in SubscriptionItem.objects.filter(subscription__in=subs):
            items[item.subscription_id].append(item)

        plans = []  # (sub, period index, start, end)
        for sub in subs:
            due = sub.due_indexes(today)
            plans += [(sub, k, *sub.period(k)) for k in due]
            if due:
                sub.billed_through = due[-1]
            sub.next_payment_date = sub.next_start_after_billing()
            if sub.status == "scheduled":
                sub.status = rules.transition(sub.status, "start").value
            sub.updated_at = now

        cycles = BillingCycle.objects.bulk_create([
            BillingCycle(subscription=sub, period_index=k, period_start=s, period_end=e, amount=sub.amount,
                         currency=sub.currency, created_at=now)
            for sub, k, s, e in plans
        ])
        numbers = _allocate_numbers(defaultdict(int, {today.year: len(plans)}))[today.year] if plans else []
        invoices = Invoice.objects.bulk_create([
            Invoice(
                number=numbers[i], subscription=sub, cycle=cycles[i], contact_id=sub.contact_id, status="open",
                issue_date=today, due_date=today + dt.timedelta(days=PAYMENT_TERM_DAYS[sub.payment_terms]),
                payment_terms=sub.payment_terms, collection=sub.collection,
                accept_online_payments=sub.accept_online_payments, currency=sub.currency,
                billing_address=sub.billing_address, owner_id=sub.owner_id, created_at=now, updated_at=now,
                **_invoice_totals(items[sub.pk]),
            )
            for i, (sub, k, s, e) in enumerate(plans)
        ])
        lines = []
        for inv, (sub, k, s, e) in zip(invoices, plans):
            for pos, item in enumerate(items[sub.pk]):
                a = line_amounts(item.unit_price, item.quantity, item.discount_percent, None, item.tax_rate)
                lines.append(InvoiceLine(invoice=inv, position=pos, name=item.name, quantity=item.quantity,
                                         unit_price=item.unit_price, discount=a.discount, tax_rate=item.tax_rate,
                                         tax=a.tax, total=a.total, period_start=s, period_end=e))
        InvoiceLine.objects.bulk_create(lines)

        attempts, emails = [], []
        for inv, cycle, (sub, k, s, e) in zip(invoices, cycles, plans):
            if sub.collection == "auto_charge" and inv.total > 0:
                attempts.append(PaymentAttempt(
                    invoice=inv, cycle=cycle, attempt_no=1, idempotency_key=idempotency_key(sub.pk, k, 1),
                    payment_method_id=sub.payment_method_id, amount=inv.total, currency=inv.currency,
                    created_at=now,
                ))
            elif sub.collection == "auto_charge":  # nothing to charge: a free period is paid at once
                _mark_paid_free(inv, cycle, now)
            elif sub.contact.email:
                emails.append(_invoice_email(sub, inv))
        PaymentAttempt.objects.bulk_create(attempts)
        summary.emails_queued += outbox.queue_many(emails)
        summary.invoices_issued += len(invoices)
        Subscription.objects.bulk_update(subs, ["billed_through", "next_payment_date", "status", "updated_at"])
        return [a.pk for a in attempts]


def _invoice_totals(items) -> dict:
    sub_total = tax = 0
    for item in items:
        a = line_amounts(item.unit_price, item.quantity, item.discount_percent, None, item.tax_rate)
        sub_total += a.net
        tax += a.tax
    return {"subtotal": sub_total, "tax": tax, "total": sub_total + tax}


def _mark_paid_free(inv: Invoice, cycle: BillingCycle, now) -> None:
    Invoice.objects.filter(pk=inv.pk).update(status="paid", paid_at=now)
    BillingCycle.objects.filter(pk=cycle.pk).update(status="paid")


def _money(minor: int, currency: str) -> dict:
    return {"amount_minor": minor, "currency": currency}


def _invoice_email(sub: Subscription, inv: Invoice) -> dict:
    from recur.checkout.links import invoice_url

    contact = sub.contact
    return {
        "kind": "invoice_issued", "to_email": contact.email or "", "to_name": contact.name,
        "language": contact.language, "record": ("invoice", inv.pk), "dedupe_key": f"invoice_issued:{inv.pk}",
        "context": {
            "subscription_name": sub.name, "invoice_number": inv.number, "total": _money(inv.total, inv.currency),
            "issue_date": inv.issue_date, "due_date": inv.due_date,
            "pay_url": invoice_url(inv) if inv.accept_online_payments else "",
        },
    }


# --- step 2 and 3: charge and record ----------------------------------------------------


def _charge(attempt_ids: list[int], summary: Summary) -> None:
    if not attempt_ids:
        return
    attempts = list(
        PaymentAttempt.objects.filter(pk__in=attempt_ids, status="started").select_related("payment_method")
    )
    requests, unusable = [], []
    for a in attempts:
        pm = a.payment_method
        if pm is None or pm.removed_at is not None:
            unusable.append(ChargeResult(a.idempotency_key, "failed", failure_code="no_payment_method",
                                         failure_message="No usable payment method is saved for this subscription"))
            continue
        requests.append(ChargeRequest(
            idempotency_key=a.idempotency_key, payment_method_ref=pm.processor_ref,
            customer_ref=_customer_ref(pm), amount=a.amount, currency=a.currency,
            description=f"Invoice {a.invoice_id}", metadata={"attempt": a.pk, "invoice": a.invoice_id},
        ))
    results = (get_processor().charge_many(requests) if requests else []) + unusable
    record_results(results, summary)


def charge_attempts(attempt_ids: list[int]) -> Summary:
    summary = Summary()
    _charge(attempt_ids, summary)
    return summary


def _customer_ref(pm) -> str:
    from recur.payments.models import ProcessorCustomer

    row = ProcessorCustomer.objects.filter(contact_id=pm.contact_id, processor=pm.processor).first()
    return row.customer_ref if row else ""


def record_results(results: list[ChargeResult], summary: Summary | None = None) -> None:
    """Step 3: record each outcome exactly once (also used for asynchronous events)."""
    summary = summary if summary is not None else Summary()
    if not results:
        return
    by_key = {r.idempotency_key: r for r in results}
    now = clock.now()
    today = clock.today()
    with transaction.atomic():
        qs = PaymentAttempt.objects.filter(idempotency_key__in=list(by_key), status__in=("started", "pending"))
        if connection.features.has_select_for_update:
            qs = qs.select_for_update(of=("self",))
        attempts = list(qs.select_related("invoice", "cycle", "invoice__subscription", "invoice__contact",
                                          "payment_method"))
        emails: list[dict] = []
        for a in attempts:
            r = by_key[a.idempotency_key]
            if r.status == "pending" and a.status == "pending":
                continue  # nothing new
            _record_one(a, r, now, today, emails, summary)
        summary.emails_queued += outbox.queue_many(emails)


def _record_one(a: PaymentAttempt, r: ChargeResult, now, today, emails: list, summary: Summary) -> None:
    inv, cycle, sub, contact = a.invoice, a.cycle, a.invoice.subscription, a.invoice.contact
    was_pending = a.status == "pending"
    a.status, a.charge_ref, a.completed_at = r.status, r.charge_ref or a.charge_ref, now
    a.failure_code, a.failure_message = r.failure_code, r.failure_message[:300]
    a.save(update_fields=["status", "charge_ref", "completed_at", "failure_code", "failure_message"])
    pm = a.payment_method
    payment = Payment.objects.filter(attempt=a).first() if was_pending else None
    if payment is None:
        payment = Payment(
            subscription=sub, invoice=inv, contact=contact, attempt=a, amount=a.amount, currency=a.currency,
            method=pm.type if pm else "card", payment_method=pm, charge_ref=r.charge_ref, paid_on=today,
            period_start=cycle.period_start if cycle else None, period_end=cycle.period_end if cycle else None,
            owner_id=inv.owner_id, created_at=now, updated_at=now, status=r.status,
        )
    payment.status, payment.failure_message, payment.updated_at = r.status, r.failure_message[:300], now
    payment.charge_ref = r.charge_ref or payment.charge_ref
    payment.save()
    if r.status == "pending":
        summary.pending += 1
        return
    ctx = {
        "subscription_name": sub.name if sub else inv.number, "customer_name": contact.name,
        "customer_email": contact.email or "", "amount": _money(a.amount, a.currency),
        "period_start": cycle.period_start if cycle else None, "period_end": cycle.period_end if cycle else None,
        "payment_method": {"type": pm.type, "brand": pm.brand, "last4": pm.last4} if pm else None,
    }
    if r.status == "succeeded":
        summary.charged += 1
        Invoice.objects.filter(pk=inv.pk).update(amount_paid=F("amount_paid") + a.amount, status="paid", paid_at=now,
                                                 updated_at=now)
        if cycle:
            BillingCycle.objects.filter(pk=cycle.pk).update(status="paid", next_retry_on=None,
                                                            attempts=F("attempts") + 1)
        first = False
        if sub:
            first = sub.payments_made == 0
            sub.payments_made += 1 if cycle else 0  # a proration charge is not one of the scheduled payments
            sub.total_paid += a.amount
            sub.last_payment_date = today
            if not rules.is_terminal(sub.status) and sub.status != "paused" and not _has_other_unpaid(sub, cycle):
                sub.status = rules.transition(sub.status, "payment_succeeded").value
            sub.updated_at = now
            sub.save(update_fields=["payments_made", "total_paid", "last_payment_date", "status", "updated_at"])
        ctx["paid_on"] = today
        _buyer_email(emails, "payment_receipt", contact, ctx, f"receipt:{payment.pk}", payment)
        summary.emails_queued += outbox.notify_admins("admin_payment_succeeded", context=ctx,
                                                      record=("payment", payment.pk), dedupe_key=f"admin_ok:{payment.pk}")
        if first:
            summary.emails_queued += outbox.notify_admins("seller_receipt", context=ctx, record=("payment", payment.pk),
                                                          dedupe_key=f"seller_receipt:{payment.pk}")
        return
    # failed
    summary.failed += 1
    tries = (cycle.attempts if cycle else 0) + 1
    schedule_days = retry_days()
    next_retry = today + dt.timedelta(days=schedule_days[tries - 1]) if tries <= len(schedule_days) else None
    if cycle:
        BillingCycle.objects.filter(pk=cycle.pk).update(status="failed", attempts=tries, next_retry_on=next_retry)
    if sub and not rules.is_terminal(sub.status) and sub.status != "paused":
        sub.status = rules.transition(sub.status, "payment_failed").value
        if next_retry is None and dunning_policy() == "cancel":
            _cancel_after_dunning(sub, now)
            summary.canceled += 1
        sub.updated_at = now
        sub.save(update_fields=["status", "updated_at", "canceled_at", "cancel_mode", "next_payment_date"])
    from recur.checkout.links import update_payment_method_url

    ctx.update(failed_on=today, reason=r.failure_message, next_retry_on=next_retry,
               update_url=update_payment_method_url(sub) if sub else "")
    _buyer_email(emails, "payment_failed", contact, ctx, f"failed:{payment.pk}", payment)
    summary.emails_queued += outbox.notify_admins("admin_payment_failed", context=ctx, record=("payment", payment.pk),
                                                  dedupe_key=f"admin_failed:{payment.pk}")


def _cancel_after_dunning(sub: Subscription, now) -> None:
    sub.status = rules.transition(sub.status, "dunning_exhausted_cancel").value
    sub.canceled_at, sub.cancel_mode, sub.next_payment_date = now, "immediately", None


def _has_other_unpaid(sub: Subscription, cycle: BillingCycle | None) -> bool:
    qs = BillingCycle.objects.filter(subscription=sub, status="failed")
    if cycle is not None:
        qs = qs.exclude(pk=cycle.pk)
    return qs.exists() or Invoice.objects.filter(subscription=sub, status="open", collection="manual",
                                                 due_date__lt=clock.today()).exists()


def _buyer_email(emails: list, kind: str, contact, context: dict, dedupe: str, payment: Payment) -> None:
    if contact.email:  # a contact without an e-mail address gets no e-mail
        emails.append({"kind": kind, "to_email": contact.email, "to_name": contact.name, "language": contact.language,
                       "context": dict(context), "record": ("payment", payment.pk), "dedupe_key": dedupe})


# --- dunning, recovery, lifecycle -------------------------------------------------------------


def _retry_batch(today: dt.date, limit: int, only_subscription: int | None = None) -> list[int]:
    """New attempts for failed cycles whose retry is due (R-BILL-6)."""
    now = clock.now()
    with transaction.atomic():
        qs = BillingCycle.objects.filter(status="failed", subscription__status__in=("past_due", "active"))
        if only_subscription is None:
            qs = qs.filter(next_retry_on__lte=today)
        else:
            qs = qs.filter(subscription_id=only_subscription)
        cycles = _claim(qs.order_by("next_retry_on", "id").select_related("subscription", "invoice"), limit)
        attempts = []
        for c in cycles:
            inv, sub = c.invoice, c.subscription
            if inv.amount_due <= 0:
                continue
            n = PaymentAttempt.objects.filter(invoice=inv).count() + 1
            attempts.append(PaymentAttempt(
                invoice=inv, cycle=c, attempt_no=n, idempotency_key=idempotency_key(sub.pk, c.period_index, n),
                payment_method_id=sub.payment_method_id, amount=inv.amount_due, currency=inv.currency, created_at=now,
            ))
        BillingCycle.objects.filter(pk__in=[c.pk for c in cycles]).update(next_retry_on=None, status="open")
        PaymentAttempt.objects.bulk_create(attempts)
        return [a.pk for a in attempts]


def collect_past_due(subscription_id: int) -> Summary:
    """Charge every past-due amount of one subscription at once (after a new payment method, R-BILL-6)."""
    summary = Summary()
    _charge(_retry_batch(clock.today(), BATCH, only_subscription=subscription_id), summary)
    return summary


def recover_started(summary: Summary, older_than_seconds: float | None = None) -> None:
    """Settle attempts a crash left ``started``: charging again with the same key is safe."""
    grace = getattr(settings, "RECUR_RECOVERY_GRACE_SECONDS", 60) if older_than_seconds is None else older_than_seconds
    cutoff = clock.now() - dt.timedelta(seconds=grace)
    while True:
        ids = list(PaymentAttempt.objects.filter(status="started", created_at__lte=cutoff)
                   .order_by("id").values_list("pk", flat=True)[:BATCH])
        if not ids:
            return
        _charge(ids, summary)


def poll_processor_events(summary: Summary) -> None:
    """Asynchronous outcomes (bank debits settling or failing)."""
    events = get_processor().poll_events()
    record_results([ChargeResult(e.idempotency_key, e.status, e.charge_ref, e.failure_code, e.failure_message)
                    for e in events], summary)


def _lifecycle(today: dt.date, summary: Summary) -> None:
    now = clock.now()
    with transaction.atomic():
        # Cancel-at-period-end subscriptions whose period is over.
        ended = list(Subscription.objects.filter(cancel_at__lte=today).exclude(status__in=("canceled", "expired")))
        for sub in ended:
            sub.status = rules.transition(sub.status, "cancel").value
            sub.canceled_at, sub.next_payment_date, sub.updated_at = now, None, now
            sub.save(update_fields=["status", "canceled_at", "next_payment_date", "updated_at"])
            _stop_retries(sub)
            summary.canceled += 1
        # Fixed terms whose last period has ended (R-VIEW-4 Expired).
        expiring = Subscription.objects.filter(status="active", billing_terms="fixed", next_payment_date__isnull=True,
                                               end_date__lte=today)
        summary.expired += expiring.update(status="expired", updated_at=now)
        # Manual invoices not paid by their due date make the subscription past due.
        overdue_subs = (Invoice.objects.filter(status="open", collection="manual", due_date__lt=today,
                                               subscription__status="active")
                        .values_list("subscription_id", flat=True).distinct())
        Subscription.objects.filter(pk__in=list(overdue_subs)).update(status="past_due", updated_at=now)


def _stop_retries(sub: Subscription) -> None:
    BillingCycle.objects.filter(subscription=sub, next_retry_on__isnull=False).update(next_retry_on=None)


# --- the run ---------------------------------------------------------------------------------


def run(today: dt.date | None = None, *, only: list[int] | None = None, batch: int = BATCH) -> Summary:
    """Bill everything due up to ``today`` (default: the account's today). Safe to run anywhere, any time."""
    today = today or clock.today()
    summary = Summary()
    if only is None:
        recover_started(summary)
        poll_processor_events(summary)
    while True:
        attempt_ids = _issue_batch(today, batch, only, summary)
        if not attempt_ids and not _more_due(today, only):
            break
        _charge(attempt_ids, summary)
    if only is None:
        while True:
            ids = _retry_batch(today, batch)
            if not ids:
                break
            _charge(ids, summary)
        _lifecycle(today, summary)
    return summary


def _more_due(today: dt.date, only) -> bool:
    qs = Subscription.objects.filter(next_payment_date__lte=today, status__in=BILLABLE)
    if only is not None:
        qs = qs.filter(pk__in=only)
    return qs.exists()


def tick() -> int:
    """The worker job."""
    return run().work


def next_event_date(after: dt.date) -> dt.date | None:
    """The first day after ``after`` on which the run has something to do (test-mode clock stepping)."""
    candidates = [
        Subscription.objects.filter(status__in=BILLABLE, next_payment_date__gt=after).aggregate(d=Min("next_payment_date"))["d"],
        BillingCycle.objects.filter(status="failed", next_retry_on__gt=after).aggregate(d=Min("next_retry_on"))["d"],
        Subscription.objects.filter(cancel_at__gt=after).exclude(status__in=("canceled", "expired"))
        .aggregate(d=Min("cancel_at"))["d"],
        Subscription.objects.filter(status="active", billing_terms="fixed", end_date__gt=after)
        .aggregate(d=Min("end_date"))["d"],
    ]
    due = Invoice.objects.filter(status="open", collection="manual", due_date__gte=after).aggregate(d=Min("due_date"))["d"]
    if due:
        candidates.append(due + dt.timedelta(days=1))
    if PaymentAttempt.objects.filter(status="pending").exists():
        candidates.append(after + dt.timedelta(days=1))
    dates = [d for d in candidates if d]
    return min(dates) if dates else None


def run_until(until: dt.date) -> Summary:
    """Test mode: move the simulated clock day by day to ``until``, billing each due day in order."""
    from recur.core.models import SimulatedClock

    total = Summary()
    day = clock.today()
    total.add(run(day))
    while True:
        nxt = next_event_date(day)
        if nxt is None or nxt > until:
            break
        day = nxt
        _set_clock(day, SimulatedClock)
        total.add(run(day))
    if clock.today() < until:
        _set_clock(until, SimulatedClock)
        total.add(run(until))
    return total


def _set_clock(day: dt.date, model) -> None:
    moment = clock.start_of_day(day) + dt.timedelta(hours=9)
    model.objects.update_or_create(pk=1, defaults={"now": moment})
