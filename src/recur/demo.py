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


@transaction.atomic
def load_demo() -> Iterator[str]:
    if User.objects.filter(email=DEMO_EMAIL).exists():
        yield "The demo data is loaded already."
        yield f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}"
        return
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
