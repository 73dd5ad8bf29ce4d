"""The hosted checkout of a payment link and the public quote page (R-NEW-1, R-SIGN-1..7, R-ALL-1..4).

No login: the link's (or quote's) unguessable token is the key. Thin: the pages read
records and call ``checkout.payment_links``. The card / bank form is the one of the
hosted invoice page (``checkout.forms.PaymentDetailsForm``)."""

from __future__ import annotations

from django import forms
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from recur.checkout import payment_links as pl
from recur.checkout.forms import is_required_error, payment_form, without_field
from recur.checkout.models import CheckoutSession, PaymentLink
from recur.checkout.templatetags.checkout_tags import amount as fmt_amount
from recur.checkout.views import LANGUAGES, SECRET_FIELDS, _language, _page, card_entry
from recur.core.errors import Conflict, NotFound, ValidationFailed
from recur.core.money import line_amounts
from recur.payments import services as payments
from recur.payments.reasons import failure_reason

REQUIRED = gettext_lazy("This field is required.")
ADDRESS = (("address_line1", gettext_lazy("Address"), "address-line1", True),
           ("postal_code", gettext_lazy("Postal code"), "postal-code", True),
           ("city", gettext_lazy("City"), "address-level2", True),
           ("country", gettext_lazy("Country"), "country", True))
TERMS = {"auto_renew": gettext_lazy("until canceled")}


class BuyerForm(forms.Form):
    """Who pays: name, e-mail, and the addresses the link asks for."""

    buyer_name = forms.CharField(label=gettext_lazy("Full name"), max_length=200)
    buyer_email = forms.EmailField(label=gettext_lazy("E-mail"), max_length=254,
                                   error_messages={"invalid": gettext_lazy("Enter a valid e-mail address.")})

    def __init__(self, *args, billing: bool = False, shipping: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        for name, l10n in (("billing", billing), ("shipping", shipping)):
            if not l10n:
                continue
            for field, label, _ac, required in ADDRESS:
                self.fields[f"{name}_{field}"] = forms.CharField(
                    label=label, max_length=200 if field != "country" else 60, required=required)
        for f in self.fields.values():
            f.error_messages["required"] = REQUIRED
        self.billing, self.shipping = billing, shipping

    def sections(self):
        """(legend, [(bound field, autocomplete)]) per address the link asks for."""
        out = []
        for name, on, legend in (("billing", self.billing, _("Billing address")),
                                 ("shipping", self.shipping, _("Shipping address"))):
            if on:
                out.append((legend, [(self[f"{name}_{f}"], f"{name} {ac}") for f, _l, ac, _r in ADDRESS]))
        return out

    def buyer(self, language: str) -> dict:
        d = self.cleaned_data
        out = {"name": d["buyer_name"], "email": d["buyer_email"], "language": language}
        for name in ("billing", "shipping"):
            if getattr(self, name):
                out[f"{name}_address"] = {f: d.get(f"{name}_{f}", "") for f, *_ in ADDRESS}
        return out

    def add_service_error(self, exc: ValidationFailed) -> None:
        field = (exc.field or "").replace("_address.", "_")
        target = {"name": "buyer_name", "email": "buyer_email"}.get(field, field)
        if target in self.fields:
            self.add_error(target, REQUIRED if is_required_error(exc) else
                           (_("Enter a valid e-mail address.") if target == "buyer_email" else without_field(exc)))
        else:
            self.add_error(None, without_field(exc))


# --- what the buyer is shown -----------------------------------------------------------------------


def _frequency(item) -> str:
    return str(item.get_billing_frequency_display()) if item.billing_frequency else ""


def summary(source) -> dict:
    """Rows and totals for the template: each item, what is due today, what recurs and from when."""
    plan = pl.plan_for(source)
    rows = list(source.items.all()) if isinstance(source, PaymentLink) else list(source.line_items.all())
    starts = {}
    for g in plan.groups:
        for it in g.items:
            starts.setdefault((it["name"], it["unit_price"], it["billing_frequency"]), g.start)
    lines = []
    for it in rows:
        total = line_amounts(it.unit_price, it.quantity, it.discount_percent, None, it.tax_rate).total
        start = starts.get((it.name, it.unit_price, it.billing_frequency)) if it.billing_frequency else None
        terms = ""
        if it.billing_frequency:
            terms = (_("%(n)s payments") % {"n": it.number_of_payments} if it.billing_terms == "fixed"
                     and it.number_of_payments else str(TERMS["auto_renew"]))
        lines.append({"name": it.name, "quantity": it.quantity, "unit_price": it.unit_price, "total": total,
                      "frequency": _frequency(it), "terms": terms, "start": start,
                      "later": bool(start and start > pl.clock.today())})
    recurring = [{"amount": g.amount, "frequency": _frequency(_Freq(g.frequency)), "start": g.start,
                  "starts_now": g.starts_now, "payments": g.payments} for g in plan.groups]
    return {"lines": lines, "due_now": plan.due_now, "currency": plan.currency, "recurring": recurring,
            "one_time_total": plan.one_time_total, "plan": plan}


class _Freq:
    def __init__(self, frequency):
        self.billing_frequency = frequency

    def get_billing_frequency_display(self):
        from recur.crm.models import BILLING_FREQUENCIES

        return dict(BILLING_FREQUENCIES)[self.billing_frequency]


# --- pages -----------------------------------------------------------------------------------------


def _checkout_page(request, source, *, kind: str, token: str, contact=None):
    lang = _language(request, contact)
    link = source if kind == "link" else None
    billing = bool(link and link.collect_billing_address)
    shipping = bool(link and link.collect_shipping_address)
    accepted = pl._accepted(source)
    open_ = link.active if link else pl.quote_open(source)
    declined = problem = None
    initial = {"buyer_name": contact.name, "buyer_email": contact.email} if contact else {}
    with translation.override(lang):
        buyer_form = BuyerForm(initial=initial, billing=billing, shipping=shipping)
        info = summary(source)
        entry = payments.method_entry(contact, accepted, currency=info["currency"], prepare=False)
        pay_form = payment_form(entry)
        nonce = pl.new_nonce()
        if request.method == "POST" and open_:
            buyer_form = BuyerForm(request.POST, billing=billing, shipping=shipping)
            pay_form = payment_form(entry, request.POST)
            posted = str(request.POST.get("nonce") or "")[:64]
            if buyer_form.is_valid() & pay_form.is_valid():
                try:
                    result = pl.checkout(source, buyer_form.buyer(lang), pay_form.details(), nonce=posted or None)
                except ValidationFailed as exc:
                    field = exc.field or ""
                    if field.split(".")[0] in ("card", "bank_account", "type", "token", "setup_intent"):
                        pay_form.add_service_error(exc)
                    else:
                        buyer_form.add_service_error(exc)
                except pl.Unavailable:
                    open_ = False
                except Conflict:
                    problem = _("This purchase is already being processed. Please wait a moment and reload the "
                                "page.")
                else:
                    if result.status == "declined":
                        declined = _("Your payment of %(amount)s was declined: %(reason)s You have not been "
                                     "charged and nothing was bought. Please try again or use another payment "
                                     "method.") % {"amount": fmt_amount(result.session.amount_due_now,
                                                                        result.session.currency),
                                                   "reason": failure_reason(result.failure_code, result.reason)}
                        pay_form = payment_form(entry, initial={"method": pay_form.cleaned_data["method"]})
                        nonce = result.session.nonce  # the retry is the same purchase (one session)
                    else:
                        name = "checkout:pay_done" if kind == "link" else "checkout:quote_done"
                        url = reverse(name, args=[token, result.session.nonce])
                        if request.GET.get("lang") in LANGUAGES:
                            url += f"?lang={request.GET['lang']}"
                        return redirect(url)
        if open_:
            entry, unavailable = card_entry(contact, accepted, info["currency"])
            problem = problem or unavailable
        if info["due_now"]:
            pay_label = _("Pay %(amount)s") % {"amount": fmt_amount(info["due_now"], info["currency"])}
        else:
            pay_label = _("Subscribe")
    context = {
        "kind": kind, "source": source, "title": source.name if link else source.title, "open": open_,
        "buyer_form": buyer_form, "form": pay_form, "entry": entry, "nonce": nonce, "declined": declined, "problem": problem,
        "pay_label": pay_label, "save_note": bool(info["recurring"]) or bool(link and link.save_payment_method),
        "expired": kind == "quote" and pl.quote_services.quote_expired(source), **info,
    }
    return _page(request, "checkout/pay.html", context, lang, status=200 if open_ else 410)


@never_cache
@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def pay_page(request, token: str):
    try:
        link = pl.link_for_token(token)
    except NotFound:
        return _page(request, "checkout/link_error.html", {"expired": False}, _language(request), status=404)
    return _checkout_page(request, link, kind="link", token=token)


@never_cache
@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def quote_page(request, token: str):
    try:
        quote = pl.quote_for_token(token)
    except NotFound:
        return _page(request, "checkout/link_error.html", {"expired": False}, _language(request), status=404)
    return _checkout_page(request, quote, kind="quote", token=token, contact=quote.contact)


def _done(request, session: CheckoutSession, source, kind: str):
    result = pl.settle_session(session.pk)  # records a charge the request that made it did not
    lang = _language(request, session.contact)
    with translation.override(lang):
        info = summary(source)
    context = {"result": result, "session": result.session, "subs": result.subscriptions, "payment": result.charge if result.charge and result.charge.amount else None,
               "kind": kind, "source": source, "title": source.name if kind == "link" else source.title,
               "email": session.buyer.get("email"),
               "retry_url": reverse("checkout:pay" if kind == "link" else "checkout:quote",
                                    args=[source.token if kind == "link" else source.public_token]), **info}
    return _page(request, "checkout/pay_done.html", context, lang)


@never_cache
@require_GET
def pay_done(request, token: str, nonce: str):
    session = CheckoutSession.objects.filter(nonce=nonce, payment_link__token=token).select_related(
        "payment_link", "contact").first()
    if session is None:
        raise Http404
    return _done(request, session, session.payment_link, "link")


@never_cache
@require_GET
def quote_done(request, token: str, nonce: str):
    session = CheckoutSession.objects.filter(nonce=nonce, quote__public_token=token).select_related(
        "quote", "contact").first()
    if session is None:
        raise Http404
    return _done(request, session, session.quote, "quote")
