"""The refund page of one payment (R-MAN-5), reached from its subscription or from its invoice."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from recur.billing import services as billing
from recur.core.errors import ServiceError
from recur.web import forms as wf
from recur.web.templatetags.recur import money


def refund_page(request, payment, *, back: str, paid_for: str):
    """Ask for the amount (at most what is left of the payment) and refund it; ``back``: the page
    to return to, ``paid_for``: what the payment was for, as the page names it."""
    left = billing.refundable(payment)
    if left <= 0:
        messages.error(request, _("Nothing of this payment can be refunded any more."))
        return redirect(back)
    form = wf.RefundForm(request.POST or None, initial={"amount": wf.money_text(left, payment.currency)})
    if request.method == "POST" and form.is_valid():
        minor = wf.to_minor(form.cleaned_data["amount"], payment.currency, form, "amount")
        if minor is not None and minor > left:
            form.add_error("amount", _("At most %(left)s of this payment can still be refunded.") % {
                "left": money(left, payment.currency)})
        elif minor is not None and minor <= 0:
            form.add_error("amount", _("A refund must be more than zero."))
        elif minor is not None:
            try:
                billing.refund_payment(request.user, payment, minor, form.cleaned_data.get("reason") or "")
            except ServiceError as exc:
                wf.add_service_error(form, exc)
            else:
                messages.success(request, _("%(amount)s is refunded.") % {"amount": money(minor, payment.currency)})
                return redirect(back)
    return render(request, "web/payment_refund.html", {"payment": payment, "left": left, "form": form,
                                                       "back": back, "paid_for": paid_for})
