"""Create, edit and delete contacts, companies, deals and products (R-OBJ-1); a deal's line items and
its conversion to subscriptions or an invoice (R-NEW-5). Thin: forms check input, services decide and
write; a service error is shown beside its field and nothing is saved (R-ALL-4)."""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from recur.core import records
from recur.core.errors import ServiceError
from recur.crm import quotes as quote_services
from recur.crm import services as crm
from recur.crm.models import Company, Contact, Deal, Product
from recur.web import commerce_forms as cf
from recur.web import crm_forms as f
from recur.web import forms as wf

MODELS = {"contact": Contact, "company": Company, "deal": Deal, "product": Product}
LIST_URLS = {"contact": "contact_list", "company": "company_list", "deal": "deal_list", "product": "product_list"}
DETAIL_URLS = {"contact": "contact_detail", "company": "company_detail", "deal": "deal_detail",
               "product": "product_detail"}


def _get(record_type: str, pk: int):
    obj = MODELS[record_type].objects.filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


def _parse(template: str, text: str) -> dict | None:
    """The placeholders' values when ``text`` is ``template`` filled in, else None. ``template`` is a
    service's msgid through gettext: the service raised it in the same (active) language."""
    pattern = re.escape(template)
    for name in dict.fromkeys(re.findall(r"%\((\w+)\)s", template)):
        pattern = pattern.replace(re.escape(f"%({name})s"), f"(?P<{name}>.+?)", 1)
    m = re.fullmatch(pattern, text)
    return m.groupdict() if m else None


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"" else value


def message_of(exc: ServiceError) -> str:
    """A service error for beside its field. Services raise their messages in the user's language;
    a few read better reworded here (a sentence that starts with an e-mail address, a quoted value).
    The service's message is recognised through its own msgid, so this works in every language."""
    text = exc.message
    if m := _parse(_("%(field)s: %(email)s already belongs to another contact"), text):
        return _("%(email)s already belongs to another contact.") % {"email": m["email"]}
    if text == _("email: this e-mail address already belongs to another contact"):
        return _("This e-mail address already belongs to another contact.")
    if m := _parse(_("%(field)s: %(value)s is not a valid domain name"), text):
        return _("“%(value)s” is not a valid domain name.") % {"value": _unquote(m["value"])}
    if m := _parse(_("%(field)s: %(value)s is not a valid e-mail address"), text):
        return _("“%(value)s” is not a valid e-mail address.") % {"value": _unquote(m["value"])}
    if text == _("contact_id: associate a contact with the deal first"):
        return _("Associate a contact with the deal first: converting bills that contact.")
    if text == _("line_items: the deal has no line items"):
        return _("The deal has no line items: add them first.")
    if text == _("line_items: there are no recurring line items; convert to an invoice instead"):
        return _("The deal has no recurring line items: convert it to an invoice instead.")
    if text == _("line_items: there are recurring line items; convert to a subscription instead"):
        return _("The deal has recurring line items: convert it to a subscription instead.")
    return wf.service_message(exc)


def add_error(form, exc: ServiceError, mapping: dict | None = None) -> None:
    field = (mapping or {}).get(exc.field or "", exc.field or "")
    field = re.sub(r"\[\d+\]$", "", field)  # other_emails[1] → other_emails
    form.add_error(field if field in form.fields else None, message_of(exc))


def _set_link(actor, obj, other_type: str, new_pk: int | None) -> None:
    """Make ``new_pk`` the record's (first) associated contact or company: the old one is let go."""
    current = records.associated(obj, other_type).first()
    if current is not None and current.pk == new_pk:
        return
    if current is not None:
        records.dissociate(actor, obj, current)
    if new_pk:
        records.associate(actor, obj, records.get_record(other_type, new_pk, field=other_type))


def _form_page(request, record_type, form, obj=None, extra=None):
    from django.urls import reverse

    cancel = reverse(DETAIL_URLS[record_type], args=[obj.pk]) if obj else reverse(LIST_URLS[record_type])
    return render(request, "web/record_form.html", {
        "form": form, "obj": obj, "record_type": record_type, "list_url": LIST_URLS[record_type],
        "cancel_url": cancel, "address_fields": wf.ADDRESS_FIELDS, **(extra or {})})


def _save(request, record_type, form, obj, create, update, links=()):
    """Run the create or update service (and the association changes) in one transaction."""
    data = form.service_data() if form.is_valid() else None
    if data is None or form.errors:
        return None
    try:
        with transaction.atomic():
            obj = update(request.user, obj, data) if obj is not None else create(request.user, data)
            for other_type in links:
                _set_link(request.user, obj, other_type, form.cleaned_data.get(other_type))
    except ServiceError as exc:
        add_error(form, exc)
        return None
    return obj


def _edit(request, record_type, form_class, create, update, pk=None, links=()):
    obj = _get(record_type, pk) if pk is not None else None
    if request.method == "POST":
        form = form_class(request.POST)
        saved = _save(request, record_type, form, obj, create, update, links)
        if saved is not None:
            messages.success(request, (_("“%(name)s” is saved.") if obj else _("“%(name)s” is created.")) % {
                "name": saved.name})
            return redirect(DETAIL_URLS[record_type], pk=saved.pk)
    else:
        initial = _initial(record_type, obj) if obj else {
            k: request.GET[k] for k in ("contact", "company") if (request.GET.get(k) or "").isdigit()}
        form = form_class(initial=initial)
    return _form_page(request, record_type, form, obj)


def _initial(record_type, obj) -> dict:
    init = {}
    if record_type == "contact":
        init = {"name": obj.name, "email": obj.email or "", "other_emails": "\n".join(obj.other_emails),
                "phone": obj.phone, "language": obj.language}
    elif record_type == "company":
        init = {"name": obj.name, "domains": "\n".join(obj.domains), "phone": obj.phone}
    elif record_type == "product":
        init = {"name": obj.name, "sku": obj.sku or "", "description": obj.description,
                "unit_price": wf.money_text(obj.unit_price, obj.currency), "currency": obj.currency,
                "billing_frequency": obj.billing_frequency or "", "tax_rate": obj.tax_rate.normalize(),
                "archived": obj.archived}
    elif record_type == "deal":
        init = {"name": obj.name, "amount": wf.money_text(obj.amount, obj.currency), "currency": obj.currency,
                "stage": obj.stage, "close_date": obj.close_date}
    if record_type in ("contact", "company"):
        init.update({k: getattr(obj, k) for k in wf.ADDRESS_FIELDS})
    for other in {"contact": ("company",), "deal": ("contact", "company")}.get(record_type, ()):
        linked = records.associated(obj, other).first()
        init[other] = linked.pk if linked else None
    return init


@login_required
def contact_edit(request, pk=None):
    return _edit(request, "contact", f.ContactForm, crm.create_contact, crm.update_contact, pk, links=("company",))


@login_required
def company_edit(request, pk=None):
    return _edit(request, "company", f.CompanyForm, crm.create_company, crm.update_company, pk)


@login_required
def product_edit(request, pk=None):
    return _edit(request, "product", f.ProductForm, crm.create_product, crm.update_product, pk)


@login_required
def deal_edit(request, pk=None):
    return _edit(request, "deal", f.DealForm, crm.create_deal, crm.update_deal, pk, links=("contact", "company"))


@login_required
def product_detail(request, pk):
    from recur.web.views.base import _record_page

    return _record_page(request, "product", pk, "web/product_detail.html")


# --- delete ----------------------------------------------------------------------------------------


def _blockers(obj) -> list[str]:
    """Why the database refuses to delete a contact (its subscriptions, invoices, payments must stay)."""
    if not isinstance(obj, Contact):
        return []
    out = []
    if obj.subscriptions.exists():
        out.append(_("subscriptions"))
    if obj.invoices.exists():
        out.append(_("invoices"))
    if obj.payments.exists():
        out.append(_("payments"))
    return out


@login_required
def record_delete(request, pk, record_type):
    obj = _get(record_type, pk)
    blockers = _blockers(obj)
    if request.method == "POST":
        try:
            crm.delete_record(request.user, obj)
        except (ProtectedError, RestrictedError, IntegrityError, ServiceError):
            messages.error(request, _("“%(name)s” cannot be deleted: it still has %(what)s, which must be kept. "
                                      "Nothing was deleted.") % {
                "name": obj.name, "what": ", ".join(_blockers(obj)) or _("linked records")})
            return redirect(DETAIL_URLS[record_type], pk=pk)
        messages.success(request, _("“%(name)s” is deleted.") % {"name": obj.name})
        return redirect(LIST_URLS[record_type])
    return render(request, "web/record_delete.html", {
        "obj": obj, "record_type": record_type, "detail_url": DETAIL_URLS[record_type],
        "blockers": ", ".join(blockers)})


# --- a deal's line items and conversion (R-NEW-5) ------------------------------------------------------


def _item_initial(li) -> dict:
    return {"product": li.product_id, "name": li.name, "unit_price": wf.money_text(li.unit_price, li.currency),
            "quantity": li.quantity, "discount_percent": li.discount_percent.normalize() or None,
            "tax_rate": li.tax_rate.normalize() or None, "billing_frequency": li.billing_frequency or "one_time",
            "billing_terms": li.billing_terms, "number_of_payments": li.number_of_payments,
            "start_date": li.billing_start_date, "delay_days": li.billing_start_delay_days or None}


@login_required
def deal_items(request, pk):
    from recur.web.views.commerce import _count, _product_data, _read_items, _reshow

    deal = _get("deal", pk)
    products = wf.product_choices()
    ctx = {"products": products, "product_data": _product_data(products), "deal": deal}
    if request.method != "POST":
        saved = list(deal.line_items.all())
        currency = saved[0].currency if saved else deal.currency
        items = [cf.ScheduledItemForm(prefix=f"item-{i}", products=products, initial=_item_initial(li))
                 for i, li in enumerate(saved)] or cf.scheduled_item_forms(None, 1, products)
        form = f.DealItemsForm(initial={"currency": currency})
        return _items_page(request, form, items, len(items), ctx)
    data = request.POST
    if "add_item" in data:
        count = _count(data)
        form, items = _reshow(data, f.DealItemsForm, products, count)
        return _items_page(request, form, items, count, ctx)
    form = f.DealItemsForm(data)
    items, rows, count, ok = _read_items(request, form, products)
    if not ok and not rows and set(form.errors) == {"__all__"} and not any(i.errors for i in items):
        ok, form = True, f.DealItemsForm(data)  # every row removed: the deal has no line items
        form.is_valid()
    if ok:
        try:
            quote_services.set_deal_line_items(request.user, deal, [it for _, it in rows])
        except ServiceError as exc:
            cf.map_item_error(form, items, rows, exc, {})
        else:
            messages.success(request, _("The deal's line items are saved."))
            return redirect("deal_detail", pk=deal.pk)
    return _items_page(request, form, items, count, ctx)


def _items_page(request, form, items, count, ctx):
    return render(request, "web/deal_items.html", {**ctx, "form": form, "items": items, "count": count})


def deal_context(deal: Deal, convert_form=None) -> dict:
    """What the deal page shows besides the record: line items, what was created, the convert box."""
    from recur.billing.models import Invoice

    items = list(deal.line_items.all())
    contact = records.associated(deal, "contact").first()
    invoice_ids = [i for _, i, _ in records.associated_ids("deal", deal.pk, "invoice")]
    invoices = list(Invoice.objects.filter(pk__in=invoice_ids).order_by("pk"))
    return {"items": items, "recurring": any(li.billing_frequency for li in items), "deal_contact": contact,
            "invoices": invoices, "convert_form": convert_form or cf.ConvertForm(contact=contact)}


@login_required
@require_POST
def deal_convert(request, pk):
    from recur.subscriptions import conversions
    from recur.web.views.base import _record_page

    deal = _get("deal", pk)
    contact = records.associated(deal, "contact").first()
    to_invoice = request.POST.get("to") == "invoice"
    form = cf.ConvertForm(request.POST, contact=contact)
    if to_invoice:
        form.fields["collection"].required = False
        form.fields["payment_method"].required = False
    if form.is_valid() or (to_invoice and "payment_terms" not in form.errors):
        try:
            if to_invoice:
                invoice = conversions.deal_to_invoice(request.user, deal, {
                    "payment_terms": form.cleaned_data["payment_terms"], "accept_online_payments": True})
                messages.success(request, _("Invoice %(number)s is created from the deal.") % {
                    "number": invoice.number})
                return redirect("deal_detail", pk=deal.pk)
            result = conversions.deal_to_subscriptions(request.user, deal, form.options())
        except ServiceError as exc:
            form = cf.ConvertForm(request.POST, contact=contact)
            form.is_valid()
            if to_invoice:
                form.errors.pop("payment_method", None)
            add_error(form, exc, cf.CONVERT_FIELD_MAP | {"contact_id": "", "line_items": ""})
        else:
            conversions.bill_due_now(result)  # the first periods due today are billed now
            n = len(result["subscriptions"])
            text = _("%(n)s subscription(s) created from the deal.") % {"n": n}
            if result.get("invoice") is not None:
                text += " " + _("One-time items are on invoice %(number)s.") % {"number": result["invoice"].number}
            messages.success(request, text)
            return redirect("deal_detail", pk=deal.pk)
    return _record_page(request, "deal", deal.pk, "web/deal_detail.html", deal_context(deal, form))
