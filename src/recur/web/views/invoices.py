"""The seller's invoice pages: the list, one invoice with its lines, payments and charge attempts, and
recording a payment received outside the processor (R-KIND-2)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from recur.billing import services as billing
from recur.checkout.links import invoice_url
from recur.billing.models import Invoice, Payment
from recur.core import clock, records
from recur.core.errors import ServiceError
from recur.notifications.models import OutboxMessage
from recur.payments.reasons import failure_reason
from recur.web import forms as wf
from recur.web.history import shown_value
from recur.web.views.refunds import refund_page
from recur.web.templatetags.recur import money

PAGE = 50
INVOICE_BADGES = {"draft": "grey", "open": "blue", "paid": "green", "void": "grey", "uncollectible": "red"}
ATTEMPT_BADGES = {"succeeded": "green", "failed": "red", "pending": "amber", "started": "amber"}
ATTEMPT_LABELS = {"succeeded": gettext_lazy("Succeeded"), "failed": gettext_lazy("Failed"),
                  "pending": gettext_lazy("Pending"), "started": gettext_lazy("In progress")}
MANUAL_METHODS = [(k, v) for k, v in Payment.METHODS if k not in ("card", "bank_account")]


def invoice_pdf_url(invoice) -> str | None:
    """The invoice's PDF (a signed link of the hosted invoice page), where that page exists."""
    from recur.checkout.links import invoice_token

    try:
        return reverse("checkout:invoice_pdf", args=[invoice_token(invoice)])
    except NoReverseMatch:
        return None


def keyset(request, qs):
    """Newest first, paged on the primary key."""
    before = request.GET.get("before", "")
    if before.isdigit():
        qs = qs.filter(pk__lt=int(before))
    rows = list(qs.order_by("-pk")[: PAGE + 1])
    return rows[:PAGE], (rows[PAGE - 1].pk if len(rows) > PAGE else None)


@login_required
def invoice_list(request):
    status = request.GET.get("status", "")
    today = clock.today()
    qs = Invoice.objects.select_related("contact", "subscription").annotate(in_flight_=Invoice.in_flight())
    if status == "overdue":
        qs = qs.filter(Invoice.overdue_filter(today))
    elif status in INVOICE_BADGES:
        qs = qs.filter(status=status)
    rows, nxt = keyset(request, qs)
    for r in rows:
        r.overdue = r.is_overdue(today)
        r.badge = "red" if r.overdue else INVOICE_BADGES.get(r.status, "grey")
        r.pdf = invoice_pdf_url(r)
    return render(request, "web/invoice_list.html", {
        "rows": rows, "next": nxt, "status": status,
        "statuses": [*Invoice.STATUSES[:2], ("overdue", _("Overdue")), *Invoice.STATUSES[2:]]})


class ManualPaymentForm(forms.Form):
    amount = wf.MoneyField(label=gettext_lazy("Amount received"),
                           error_messages={"required": gettext_lazy("Enter the amount received.")})
    paid_on = forms.DateField(label=gettext_lazy("Received on"), widget=forms.DateInput(attrs={"type": "date"}),
                              error_messages={"required": gettext_lazy("Enter the day the payment was received."),
                                              "invalid": gettext_lazy("Enter a date such as 2026-03-01.")})
    method = forms.ChoiceField(label=gettext_lazy("Method"), choices=MANUAL_METHODS)
    reference = forms.CharField(label=gettext_lazy("Reference (optional)"), max_length=200, required=False,
                                help_text=gettext_lazy("For example the bank statement line or cheque number."))


def _invoice(pk) -> Invoice:
    invoice = Invoice.objects.select_related("contact", "subscription").filter(pk=pk).first()
    if invoice is None:
        raise Http404
    return invoice


FIELD_LABELS = {"status": gettext_lazy("Status"), "amount_paid": gettext_lazy("Amount paid"),
                "due_date": gettext_lazy("Due date")}
MONEY_FIELDS = {"amount_paid", "total", "subtotal", "tax"}


def _change_rows(invoice, entry) -> list[tuple[str, str, str]]:
    """An update's changes as (label, old, new) in the reader's terms: amounts as money, statuses by name."""
    if entry.action != "updated" or not entry.changes:
        return []
    return [(str(FIELD_LABELS[name]), *(shown_value(Invoice, name, v, invoice.currency, MONEY_FIELDS) for v in pair))
            for name, pair in entry.changes.items()
            if name in FIELD_LABELS and isinstance(pair, (list, tuple)) and len(pair) == 2]


@login_required
def invoice_detail(request, pk):
    invoice = _invoice(pk)
    form = None
    can = billing.invoice_actions(invoice)
    if can.in_flight and request.method == "POST":
        messages.error(request, _("A payment of invoice %(number)s is under way; try again when it has settled.")
                       % {"number": invoice.number})
        return redirect("invoice_detail", pk=invoice.pk)
    if can.take_payment:
        form = ManualPaymentForm(request.POST or None, initial={
            "amount": wf.money_text(invoice.amount_unpaid, invoice.currency), "paid_on": clock.today(),
            "method": "bank_transfer"})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            minor = wf.to_minor(data["amount"], invoice.currency, form, "amount")
            if minor is not None and minor > invoice.amount_unpaid:
                message = (_("At most %(left)s of this invoice is unpaid.") if invoice.status == "uncollectible"
                           else _("At most %(left)s is still due on this invoice."))
                form.add_error("amount", message % {"left": money(invoice.amount_unpaid, invoice.currency)})
            elif minor is not None and minor <= 0:
                form.add_error("amount", _("A payment must be more than zero."))
            elif minor is not None:
                try:
                    billing.record_manual_payment(request.user, invoice, minor, paid_on=data["paid_on"],
                                                  method=data["method"], reference=data.get("reference") or "")
                except ServiceError as exc:
                    wf.add_service_error(form, exc)
                else:
                    messages.success(request, _("A payment of %(amount)s is recorded on invoice %(number)s.") % {
                        "amount": money(minor, invoice.currency), "number": invoice.number})
                    return redirect("invoice_detail", pk=invoice.pk)
    elif request.method == "POST":
        messages.error(request, _("Invoice %(number)s takes no more payments.") % {"number": invoice.number})
        return redirect("invoice_detail", pk=invoice.pk)
    payments = list(invoice.payments.select_related("payment_method").order_by("pk"))
    for p in payments:
        p.left = billing.refundable(p)
    attempts = list(invoice.attempts.select_related("payment_method").order_by("attempt_no"))
    for a in attempts:
        a.badge = ATTEMPT_BADGES.get(a.status, "grey")
        a.label = ATTEMPT_LABELS.get(a.status, a.status)
        a.reason = failure_reason(a.failure_code, a.failure_message,
                                  a.payment_method.type if a.payment_method else None, seller=True) \
            if a.status == "failed" else ""
    lines = list(invoice.lines.all())
    history = list(records.history("invoice", invoice.pk).select_related("actor").order_by("-at", "-id")[:50])
    for h in history:
        h.rows = _change_rows(invoice, h)
    emails = list(OutboxMessage.objects.filter(
        Q(record_type="invoice", record_id=invoice.pk)
        | Q(record_type="payment", record_id__in=[p.pk for p in payments])).order_by("-pk")[:50])
    return render(request, "web/invoice_detail.html", {
        "invoice": invoice, "obj": invoice, "badge": INVOICE_BADGES.get(invoice.status, "grey"),
        "lines": lines, "show_discount": any(x.discount for x in lines), "show_tax": any(x.tax for x in lines),
        "payments": payments, "attempts": attempts, "emails": emails, "form": form,
        "pdf": invoice_pdf_url(invoice), "hosted": invoice_url(invoice),
        "can_void": can.void, "can_write_off": can.write_off, "in_flight": can.in_flight,
        "history": history,
        "address": invoice.billing_address or {}, "tz": clock.account_zone().key,
    })


CLOSE_ACTIONS = {"void": billing.void_invoice, "uncollectible": billing.mark_uncollectible}


@login_required
def invoice_close(request, pk, action):
    """Void an unpaid invoice, or write an open one off as uncollectible, after a confirmation page."""
    invoice = _invoice(pk)
    error = ""
    if request.method == "POST":
        try:
            CLOSE_ACTIONS[action](request.user, invoice)
        except ServiceError as exc:
            error = exc.message
        else:
            messages.success(request, (_("Invoice %(number)s is void; nothing is due on it.") if action == "void" else
                                       _("Invoice %(number)s is written off as uncollectible.")) % {
                "number": invoice.number})
            return redirect("invoice_detail", pk=invoice.pk)
    return render(request, "web/invoice_close.html", {"invoice": invoice, "action": action, "error": error})


@login_required
def invoice_payment_refund(request, pk, payment_pk):
    """Refund a payment of this invoice (an invoice without a subscription has no other page for it)."""
    invoice = _invoice(pk)
    payment = get_object_or_404(Payment, pk=payment_pk, invoice=invoice)
    return refund_page(request, payment, back=reverse("invoice_detail", args=[invoice.pk]),
                       paid_for=_("invoice %(number)s") % {"number": invoice.number})

