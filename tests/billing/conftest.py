import pytest

from recur.crm import services as crm
from recur.payments import services as payments

CARDS = {
    "ok": "4242424242424242",
    "declined": "4000000000000002",
    "insufficient": "4000000000009995",
    "fail_charges": "4000000000000341",
}




@pytest.fixture
def buyer(admin):
    def make(card="ok", email="anna@example.nl", language="nl"):
        contact = crm.create_contact(admin, {"name": "Anna de Vries", "email": email, "language": language})
        pm = None
        if card:
            pm = payments.add_payment_method(admin, contact, {
                "type": "card", "card": {"number": CARDS[card], "exp_month": 12, "exp_year": 2035, "cvc": "123"}})
        return contact, pm

    return make


def item(**kw):
    base = {"name": "Support plan", "unit_price": {"amount": "49.00", "currency": "EUR"}, "quantity": 1,
            "billing_frequency": "monthly"}
    base.update(kw)
    return base


def create(api, contact, pm, **kw):
    """A subscription through POST /api/v1/subscriptions (billed at once when due): its JSON."""
    body = {"contact_id": contact.pk, "collection": "auto_charge", "payment_method_id": pm.pk if pm else None,
            "line_items": [item()]}
    body.update(kw)
    r = api.post("/subscriptions", body)
    assert r.status_code == 201, r.content
    return r.json()
