"""Turning deals and quotes into subscriptions or invoices (R-NEW-5, R-NEW-6, R-SIGN-2, R-SIGN-4).

Recurring line items are grouped by the R-SIGN-4 key: each group becomes one
subscription; one-time items go on a one-off invoice. Every record made is
associated with the company, the deal and the quote; a subscription with its billing contact
only when the account setting "associate billing contacts" is on (R-SIGN-2).
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from recur.billing import services as billing
from recur.core import account, records
from recur.core.errors import Conflict, ValidationFailed
from recur.crm import quotes
from recur.crm.models import Company, Deal, Quote
from recur.subscriptions import grouping
from recur.subscriptions.services import create_subscription, split_error


def _company_of(*recs) -> Company | None:
    for rec in recs:
        if rec is not None:
            found = records.associated(rec, "company").first()
            if found:
                return found
    return None


def _split(items: list[dict]) -> tuple[list[list[dict]], list[dict]]:
    try:
        return grouping.split_recurring(items)
    except ValueError as exc:
        raise split_error(exc, items) from None


@transaction.atomic
def _to_subscriptions(actor, *, contact, items, deal, quote, options: dict) -> dict:
    groups, one_time = _split(items)
    if not groups:
        raise Conflict(_("line_items: there are no recurring line items; convert to an invoice instead"),
                       field="line_items", code="no_recurring_items")
    company = _company_of(deal, contact)
    subs = [
        create_subscription(actor, {
            **options, "contact_id": contact.pk, "company_id": company.pk if company else None,
            "deal_ids": [deal.pk] if deal else [], "quote_id": quote.pk if quote else None, "line_items": group,
            "associate_billing_contact": account.current().associate_billing_contacts,
        }, allow_backdate=False)
        for group in groups
    ]
    invoice = None
    if one_time:
        invoice = billing.create_invoice(actor, contact=contact, items=one_time,
                                         payment_terms=options.get("payment_terms") or "due_on_receipt",
                                         related=[r for r in (deal, quote, company) if r is not None])
    return {"subscriptions": subs, "invoice": invoice}


@transaction.atomic
def _to_invoice(actor, *, contact, items, deal, quote, options: dict):
    groups, one_time = _split(items)
    if groups:
        raise Conflict(_("line_items: there are recurring line items; convert to a subscription instead"),
                       field="line_items", code="has_recurring_items")
    company = _company_of(deal, contact)
    return billing.create_invoice(actor, contact=contact, items=one_time,
                                  payment_terms=options.get("payment_terms") or "due_on_receipt",
                                  accept_online_payments=options.get("accept_online_payments", True),
                                  related=[r for r in (deal, quote, company) if r is not None])


def _quote_parts(quote: Quote):
    quotes.check_convertible(quote)
    if quote.contact is None:
        raise ValidationFailed(_("contact_id: the quote has no contact"), field="contact_id")
    return quote.contact, quotes.item_dicts(quote.line_items.all()), quote.deal


@transaction.atomic
def quote_to_subscriptions(actor, quote: Quote, options: dict) -> dict:
    quote = Quote.objects.select_for_update().get(pk=quote.pk)  # two conversions at once: one wins
    contact, items, deal = _quote_parts(quote)
    result = _to_subscriptions(actor, contact=contact, items=items, deal=deal, quote=quote, options=options)
    records.update(quote, actor, {"status": "accepted"})
    return result


@transaction.atomic
def quote_to_invoice(actor, quote: Quote, options: dict):
    quote = Quote.objects.select_for_update().get(pk=quote.pk)
    contact, items, deal = _quote_parts(quote)
    invoice = _to_invoice(actor, contact=contact, items=items, deal=deal, quote=quote, options=options)
    records.update(quote, actor, {"status": "accepted"})
    return invoice


def bill_due_now(result: dict) -> dict:
    """After a conversion has committed: bill the subscriptions whose first period is due today,
    as creating one directly does."""
    from recur.billing import engine
    from recur.core import clock

    due = [s.pk for s in result["subscriptions"] if s.next_payment_date and s.next_payment_date <= clock.today()]
    if due:
        engine.run(only=due)
        for s in result["subscriptions"]:
            s.refresh_from_db()
    return result


def _deal_parts(deal: Deal):
    items = quotes.item_dicts(deal.line_items.all())
    if not items:
        raise Conflict(_("line_items: the deal has no line items"), field="line_items", code="no_line_items")
    contact = records.associated(deal, "contact").first()
    if contact is None:
        raise ValidationFailed(_("contact_id: associate a contact with the deal first"), field="contact_id")
    return contact, items


def _lock_unconverted(deal: Deal) -> Deal:
    """A deal converts once: two conversions at once wait on the row lock, and the second sees the first's work."""
    deal = Deal.objects.select_for_update().get(pk=deal.pk)
    if records.associated_ids("deal", deal.pk, "subscription") or records.associated_ids("deal", deal.pk, "invoice"):
        raise Conflict(_("status: this deal already has subscriptions or invoices; it cannot be converted again"),
                       field="status", code="deal_converted")
    return deal


@transaction.atomic
def deal_to_subscriptions(actor, deal: Deal, options: dict) -> dict:
    deal = _lock_unconverted(deal)
    contact, items = _deal_parts(deal)
    return _to_subscriptions(actor, contact=contact, items=items, deal=deal, quote=None, options=options)


@transaction.atomic
def deal_to_invoice(actor, deal: Deal, options: dict):
    deal = _lock_unconverted(deal)
    contact, items = _deal_parts(deal)
    return _to_invoice(actor, contact=contact, items=items, deal=deal, quote=None, options=options)
