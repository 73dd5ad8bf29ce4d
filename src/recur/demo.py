"""``recur demo``: a realistic data set, loaded through the same services as
the app and API, so that it obeys every rule they do."""

from __future__ import annotations

import random
from typing import Iterator

from django.db import transaction

from recur.core import records
from recur.core.auth import create_user
from recur.core.models import User
from recur.crm import services as crm
from recur.crm.models import Deal

DEMO_EMAIL = "demo@recur.example"
DEMO_PASSWORD = "recur-demo-2026"

COMPANIES = [
    ("Bakkerij Jansen", "bakkerijjansen.nl", "Utrecht", "NL"),
    ("Noordzee Logistiek", "noordzee-logistiek.nl", "Rotterdam", "NL"),
    ("Studio Vlam", "studiovlam.nl", "Amsterdam", "NL"),
    ("Alpine Tools GmbH", "alpinetools.de", "München", "DE"),
    ("Brightwave Ltd", "brightwave.co.uk", "Leeds", "GB"),
    ("Kaffe & Kod AB", "kaffekod.se", "Göteborg", "SE"),
]
PEOPLE = [
    ("Anna de Vries", "nl"), ("Pieter Bakker", "nl"), ("Sanne Visser", "nl"), ("Daan Smit", "nl"),
    ("Lotte Meijer", "nl"), ("Jonas Weber", "en"), ("Emily Clarke", "en"), ("Oliver Hughes", "en"),
    ("Freja Lind", "en"), ("Noah Peters", "nl"), ("Eva Mulder", "nl"), ("Liam Brouwer", "nl"),
]
PRODUCTS = [
    ("Starter plan", "PLAN-START", 1900, "monthly"),
    ("Team plan", "PLAN-TEAM", 4900, "monthly"),
    ("Business plan (yearly)", "PLAN-BIZ-Y", 99000, "annually"),
    ("Support plan", "SUPPORT", 4900, "monthly"),
    ("Extra seat", "SEAT", 800, "monthly"),
    ("Quarterly review", "REVIEW-Q", 25000, "quarterly"),
    ("Onboarding", "ONBOARD", 15000, None),
    ("Data migration", "MIGRATE", 45000, None),
]


def load_demo() -> list[str]:
    if User.objects.filter(email=DEMO_EMAIL).exists():
        return ["The demo data is loaded already.", f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}"]
    with transaction.atomic():
        lines = list(_crm())
    lines.insert(-1, _subscriptions())
    return lines


def _crm() -> Iterator[str]:
    rng = random.Random(2026)
    owner = create_user(DEMO_EMAIL, DEMO_PASSWORD, super_admin=True, name="Demo Admin")
    products = [
        crm.create_product(owner, {"name": n, "sku": s, "unit_price": p, "currency": "EUR", "billing_frequency": f,
                                   "tax_rate": "21"})
        for n, s, p, f in PRODUCTS
    ]
    companies = [
        crm.create_company(owner, {"name": n, "domains": [d], "city": c, "country": cc})
        for n, d, c, cc in COMPANIES
    ]
    contacts = []
    for i, (name, lang) in enumerate(PEOPLE):
        company = companies[i % len(companies)]
        first = name.split()[0].lower()
        contact = crm.create_contact(owner, {
            "name": name, "email": f"{first}@{company.domains[0]}", "language": lang,
            "address_line1": f"{rng.choice(['Hoofdstraat', 'Kerkweg', 'Dorpsplein', 'Station Road'])} {rng.randint(1, 120)}",
            "postal_code": f"{rng.randint(1000, 9999)} AB", "city": company.city, "country": company.country,
        })
        records.associate(owner, contact, company)
        contacts.append(contact)
    stages = [s for s, _ in Deal.STAGES]
    for i, company in enumerate(companies):
        product = products[i % 4]
        deal = crm.create_deal(owner, {"name": f"{company.name} — {product.name}", "amount": product.unit_price * 12,
                                       "currency": "EUR", "stage": stages[i % len(stages)]})
        records.associate(owner, deal, company)
        records.associate(owner, deal, contacts[i])
    yield f"Loaded {len(contacts)} contacts, {len(companies)} companies, {len(companies)} deals, {len(products)} products."
    yield f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}"


# (contact index, products with quantities, months ago it started, card, collection, what happened)
SUBSCRIPTIONS = [
    (0, [("PLAN-TEAM", 1)], 12, "4242424242424242", "auto_charge", None),
    (1, [("SUPPORT", 1)], 2, "4000000000000341", "auto_charge", None),  # every charge fails: Unpaid
    (2, [("PLAN-BIZ-Y", 1)], 11, "4242424242424242", "auto_charge", None),
    (3, [("PLAN-START", 1)], 6, "4242424242424242", "auto_charge", ("fixed", 3)),  # Expired
    (4, [("PLAN-TEAM", 1)], 9, "5555555555554444", "auto_charge", ("cancel", 3)),  # Canceled with a refund
    (5, [("REVIEW-Q", 1)], 8, None, "manual", ("pay_invoices", 2)),
    (6, [("PLAN-START", 1)], -1, "4242424242424242", "auto_charge", None),  # Scheduled
    (7, [("SUPPORT", 1)], 5, "4242424242424242", "auto_charge", ("pause", 1)),  # Paused
    (8, [("PLAN-TEAM", 1)], 4, "bank", "auto_charge", None),  # bank debits
    (9, [("PLAN-TEAM", 1), ("SEAT", 5)], 7, "4242424242424242", "auto_charge", None),
]


def _subscriptions() -> str:
    """A year of history, made by the real services and billing run while the clock moves."""
    from dateutil.relativedelta import relativedelta

    from recur.billing import engine
    from recur.billing import services as billing
    from recur.billing.models import Invoice
    from recur.core import clock
    from recur.crm.models import Contact, Product
    from recur.payments import services as payments
    from recur.subscriptions import services as subs

    owner = User.objects.get(email=DEMO_EMAIL)
    contacts = list(Contact.objects.order_by("pk"))
    products = {p.sku: p for p in Product.objects.all()}
    today = clock.today()
    events: dict = {}
    for plan in SUBSCRIPTIONS:
        i, items, months, card, collection, after = plan
        start = today + relativedelta(days=20) if months < 0 else today - relativedelta(months=months)
        events.setdefault(start if months >= 0 else today, []).append(("create", plan, start))
    made = []
    day = min(events)
    while day <= today:
        with clock.freeze(day):
            for kind, plan, extra in events.pop(day, []):
                i, items, months, card, collection, after = plan
                contact = contacts[i]
                if kind == "create":
                    pm = None
                    if card == "bank":
                        pm = payments.add_payment_method(owner, contact, {"type": "bank_account", "bank_account": {
                            "routing_number": "110000000", "account_number": "000123456789",
                            "holder_name": contact.name}})
                    elif card:
                        pm = payments.add_payment_method(owner, contact, {"type": "card", "card": {
                            "number": card, "exp_month": 12, "exp_year": today.year + 3, "cvc": "123"}})
                    line_items = [{"product_id": products[sku].pk, "quantity": q} for sku, q in items]
                    if after and after[0] == "fixed":
                        for li in line_items:
                            li.update(billing_terms="fixed", number_of_payments=after[1])
                    if months < 0:
                        for li in line_items:
                            li["billing_start_date"] = extra
                    company = records.associated(contact, "company").first()
                    sub = subs.create_subscription(owner, {
                        "contact_id": contact.pk, "company_id": company.pk if company else None,
                        "collection": collection, "payment_method_id": pm.pk if pm else None,
                        "payment_terms": "net_30" if collection == "manual" else "due_on_receipt",
                        "line_items": line_items})
                    made.append(sub)
                    if after and after[0] in ("cancel", "pause"):
                        events.setdefault(today - relativedelta(months=after[1]) + relativedelta(days=9),
                                          []).append((after[0], plan, sub))
                elif kind == "cancel":
                    subs.cancel(owner, extra, "refund_unused", confirm=True)
                elif kind == "pause":
                    subs.pause(owner, extra)
            engine.run(day)
            for sub in made:
                i, _, _, _, collection, after = next(p for p in SUBSCRIPTIONS if contacts[p[0]].pk == sub.contact_id)
                if after and after[0] == "pay_invoices":
                    for inv in Invoice.objects.filter(subscription=sub, status="open").order_by("pk")[:1]:
                        if (day - inv.issue_date).days == 12 and Invoice.objects.filter(
                                subscription=sub, status="paid").count() < after[1]:
                            billing.record_manual_payment(owner, inv, inv.amount_due, reference="Bank transfer")
        day += relativedelta(days=1)
    return f"Made {len(made)} subscriptions with a year of payments, invoices and e-mails."
