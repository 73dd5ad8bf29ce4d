"""The buyer's hosted pages (R-ALL-1): no login, reached only through a signed link
(R-ALL-2), in the billing contact's language (R-ALL-3). Thin: they read records and
call ``checkout.services``."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from recur.billing.pdf import address_lines, render_invoice_pdf
from recur.billing.models import TAKES_PAYMENTS
from recur.checkout import services
from recur.checkout.forms import InvoiceAddressForm, payment_form
from recur.checkout.templatetags.checkout_tags import amount as fmt_amount
from recur.checkout.templatetags.checkout_tags import method_label as _method_label
from recur.core import clock
from recur.core.errors import Conflict, ServiceError, ValidationFailed
from recur.payments import services as payments
from recur.payments.reasons import failure_reason
from recur.subscriptions import status as rules

log = logging.getLogger("recur.checkout")

LANGUAGES = ("en", "nl")
SECRET_FIELDS = ("card_number", "card_cvc", "card_exp_month", "card_exp_year", "bank_account", "bank_routing")
BADGES = {"active": "green", "paid": "green", "past_due": "red", "open": "amber", "scheduled": "grey",
          "paused": "grey", "canceled": "grey", "expired": "grey", "void": "grey", "uncollectible": "amber",
          "draft": "grey"}


def _seller() -> str:
    from recur.notifications.services import account_settings, sender

    return sender(account_settings())[0]


def _language(request, contact=None) -> str:
    """``?lang=`` when the buyer chose one, else the contact's language, else the browser's."""
    asked = request.GET.get("lang")
    if asked in LANGUAGES:
        return asked
    lang = getattr(contact, "language", None) or getattr(request, "LANGUAGE_CODE", None) or "en"
    return lang if lang in LANGUAGES else "en"


def _page(request, template: str, context: dict, lang: str, status: int = 200) -> HttpResponse:
    with translation.override(lang):
        response = render(request, template, {"seller": _seller(), **context}, status=status)
    response["Content-Language"] = lang
    # The URL is the key to the page: keep it out of caches, search engines and other sites' Referer headers.
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "same-origin"
    return response


def card_entry(contact, accepted: list[str], currency: str):
    """(entry, problem): how the page being shown collects a payment method (``MethodEntry``; with
    Stripe a new SetupIntent), or, when the processor cannot be reached, no entry and why."""
    try:
        return payments.method_entry(contact, accepted, currency=currency), None
    except ServiceError:
        log.exception("The processor could not start the card entry of a hosted page")
        return (payments.method_entry(contact, accepted, currency=currency, prepare=False),
                _("Card entry is not available right now. Please try again in a few minutes."))


def _link_error(request, exc: ServiceError) -> HttpResponse:
    expired = isinstance(exc, services.LinkExpired)
    return _page(request, "checkout/link_error.html", {"expired": expired}, _language(request),
                 status=exc.status)


def reason(attempt) -> str:
    """Why a charge failed, in the active language."""
    if attempt is None:
        return ""
    method = attempt.payment_method if attempt.payment_method_id else None
    return failure_reason(attempt.failure_code, attempt.failure_message, method.type if method else None)


def _money(minor: int, currency: str) -> str:
    return fmt_amount(minor, currency)


# --- hosted invoice ---------------------------------------------------------------------------


@never_cache
@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def invoice_page(request, token: str):
    try:
        invoice = services.invoice_for_token(token)
    except ServiceError as exc:
        return _link_error(request, exc)
    lang = _language(request, invoice.contact)
    accepted = services.accepted_methods(invoice)
    billing, shipping = services.collects(invoice)
    declined = problem = None
    entry = payments.method_entry(invoice.contact, accepted, currency=invoice.currency, prepare=False)
    with translation.override(lang):
        form = payment_form(entry)
        address_form = InvoiceAddressForm(billing=billing, shipping=shipping)
        if request.method == "POST":
            form = payment_form(entry, request.POST)
            address_form = InvoiceAddressForm(request.POST, billing=billing, shipping=shipping)
            if address_form.is_valid() & form.is_valid():
                try:
                    payment = services.pay_invoice(invoice, form.details(), address_form.addresses())
                except ValidationFailed as exc:
                    if (exc.field or "").startswith(("billing_address", "shipping_address")):
                        address_form.add_service_error(exc)
                    else:
                        form.add_service_error(exc)
                except services.PaymentProcessing:
                    messages.info(request, _("Your payment is being processed. We'll let you know by e-mail "
                                             "when it has gone through."))
                    return redirect(request.get_full_path())
                except Conflict as exc:
                    problem = _conflict_text(exc)
                else:
                    amount = _money(payment.amount, payment.currency)
                    if payment.status == "succeeded":
                        messages.success(request, _("Thank you — your payment of %(amount)s succeeded.")
                                         % {"amount": amount})
                        return redirect(request.get_full_path())
                    if payment.status == "pending":
                        messages.info(request, _("Thank you — your bank payment of %(amount)s is being processed. "
                                                 "We'll let you know when it has cleared.") % {"amount": amount})
                        return redirect(request.get_full_path())
                    declined = _("Your payment of %(amount)s was declined: %(reason)s You have not been "
                                 "charged. Please try again or use another payment method.") % {
                        "amount": amount, "reason": reason(payment.attempt)}
                    form = payment_form(entry, initial={"method": form.cleaned_data["method"]})
        invoice.refresh_from_db()
        can_pay = services.payable(invoice)
        if can_pay:
            entry, unavailable = card_entry(invoice.contact, accepted, invoice.currency)
            problem = problem or unavailable
        bounced = _bounced_debit(invoice) if can_pay and not declined else None
    in_flight = invoice.attempt_in_flight()
    invoice.in_flight_ = in_flight is not None  # is_overdue need not ask again
    overdue = invoice.is_overdue(clock.today())
    context = {
        "invoice": invoice, "lines": list(invoice.lines.all()), "form": form, "declined": declined,
        "address_form": address_form,
        "problem": problem, "payable": can_pay, "address": address_lines(invoice), "entry": entry,
        "in_flight": in_flight, "overdue": overdue, "bounced": bounced,
        "badge": "red" if overdue else BADGES.get(invoice.status, "grey"), "token": token,
        "takes_payments": invoice.status in TAKES_PAYMENTS,  # open, or written off and still payable
        "lang_query": f"?lang={request.GET['lang']}" if request.GET.get("lang") in LANGUAGES else "",
    }
    return _page(request, "checkout/invoice.html", context, lang, status=200)


def _bounced_debit(invoice) -> str | None:
    """When the invoice's latest payment was a bank debit that could not be collected, say so: the buyer
    saw "being processed" last time and now finds the invoice open again."""
    from django.utils import formats

    last = invoice.payments.select_related("attempt").order_by("-pk").first()
    if last is None or last.status != "failed" or last.method != "bank_account":
        return None
    return _("Your bank payment of %(amount)s on %(day)s could not be collected: %(reason)s Please pay again.") % {
        "amount": _money(last.amount, last.currency), "day": formats.date_format(last.paid_on, "DATE_FORMAT"),
        "reason": reason(last.attempt) if last.attempt_id else _("The payment was declined.")}


def _conflict_text(exc: Conflict) -> str:
    return {
        "paid": _("This invoice has already been paid."),
        "payment_in_progress": _("A payment of this invoice is already being processed."),
        "online_payments_off": _("This invoice cannot be paid online."),
        "invoice_not_open": _("This invoice cannot be paid any more."),
        "subscription_ended": _("This subscription has ended; its payment method can no longer be changed."),
    }.get(exc.code, _("This could not be done. Please reload the page and try again."))


@never_cache
@require_GET
def invoice_pdf(request, token: str):
    try:
        invoice = services.invoice_for_token(token)
    except ServiceError as exc:
        return _link_error(request, exc)
    response = HttpResponse(render_invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="invoice-{invoice.number}.pdf"'
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


# --- update payment method --------------------------------------------------------------------


@never_cache
@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def update_page(request, token: str):
    try:
        sub = services.subscription_for_token(token)
    except ServiceError as exc:
        return _link_error(request, exc)
    lang = _language(request, sub.contact)
    accepted = services.accepted_methods(sub)
    ended = rules.is_terminal(sub.status)
    problem = None
    entry = payments.method_entry(sub.contact, accepted, currency=sub.currency, prepare=False)
    with translation.override(lang):
        form = payment_form(entry)
        if request.method == "POST" and not ended:
            form = payment_form(entry, request.POST)
            if form.is_valid():
                try:
                    outcome = services.update_payment_method(sub.pk, form.details())
                except ValidationFailed as exc:
                    form.add_service_error(exc)
                except services.LinkExpired as exc:
                    return _link_error(request, exc)
                except Conflict as exc:
                    problem = _conflict_text(exc)
                else:
                    _outcome_messages(request, outcome)
                    return redirect(request.get_full_path())
        if not ended:
            entry, unavailable = card_entry(sub.contact, accepted, sub.currency)
            problem = problem or unavailable
    sub.refresh_from_db()
    method = sub.payment_method if sub.payment_method and sub.payment_method.removed_at is None else None
    context = {
        "sub": sub, "method": method, "form": form, "problem": problem, "ended": ended, "entry": entry,
        "past_due": services.past_due_amount(sub), "badge": BADGES.get(sub.status, "grey"),
        "lang_query": f"?lang={request.GET['lang']}" if request.GET.get("lang") in LANGUAGES else "",
    }
    return _page(request, "checkout/update.html", context, lang)


def _outcome_messages(request, outcome: services.UpdateOutcome) -> None:
    cur = outcome.currency
    method = _method_label(outcome.payment_method)
    if outcome.succeeded:
        messages.success(request, _("Thank you — your payment of %(amount)s succeeded.")
                         % {"amount": _money(outcome.succeeded, cur)})
    for attempt in outcome.failed:
        messages.error(request, _("Your new payment method was saved, but the payment of %(amount)s was declined: "
                                  "%(reason)s Please try another card or bank account.")
                       % {"amount": _money(attempt.amount, cur), "reason": reason(attempt)})
    if outcome.pending:
        messages.info(request, _("Thank you — your bank payment of %(amount)s is being processed. We'll let you "
                                 "know when it has cleared.") % {"amount": _money(outcome.pending, cur)})
    if outcome.processing:
        messages.info(request, _("Your payment is being processed. We'll let you know by e-mail when it has gone "
                                 "through."))
    if not outcome.attempts:
        messages.success(request, _("Thank you — your payment method has been updated. Future payments will be "
                                    "charged to %(method)s.") % {"method": method})



