"""/api/v1/payment-links (SPEC §12, R-NEW-2, R-ALL-4)."""

from __future__ import annotations

import pytest

from recur.checkout.models import PaymentLink

pytestmark = pytest.mark.django_db


def item(**kw):
    return {"name": "Support plan", "unit_price": {"amount": "49.00", "currency": "EUR"}, "quantity": 1,
            "billing_frequency": "monthly", **kw}


def test_create_get_list(api):
    r = api.post("/payment-links", {"name": "Plans", "line_items": [
        item(), item(name="Licence", billing_frequency="annually"),
        {"name": "Onboarding", "unit_price": {"amount": "150.00", "currency": "EUR"}}],
        "accepted_payment_methods": ["card", "bank_account"], "collect_billing_address": True})
    assert r.status_code == 201, r.content
    body = r.json()
    link = PaymentLink.objects.get()
    assert body["url"].endswith(f"/billing/pay/{link.token}/")
    assert body["due_today"] == {"amount": "248.00", "currency": "EUR"}
    assert body["subscriptions_per_purchase"] == 2 and body["collect_billing_address"] is True
    assert [i["billing_frequency"] for i in body["line_items"]] == ["monthly", "annually", None]
    assert api.get(f"/payment-links/{body['id']}").json()["url"] == body["url"]
    assert [x["id"] for x in api.get("/payment-links").json()["items"]] == [body["id"]]
    archived = api.post(f"/payment-links/{body['id']}/archive").json()
    assert archived["active"] is False


def test_mismatched_currency_is_422_naming_the_field(api):
    r = api.post("/payment-links", {"line_items": [item(), item(unit_price={"amount": "1.00", "currency": "USD"})]})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "line_items[1].unit_price.currency"
    assert not PaymentLink.objects.exists()


def test_archived_product_is_422(api):
    p = api.post("/products", {"name": "Old", "unit_price": {"amount": "10.00", "currency": "EUR"},
                               "billing_frequency": "monthly"}).json()
    api.patch(f"/products/{p['id']}", {"archived": True})
    r = api.post("/payment-links", {"line_items": [{"product_id": p["id"]}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "line_items[0].product_id"


def test_bad_method_and_unknown_link(api):
    r = api.post("/payment-links", {"line_items": [item()], "accepted_payment_methods": ["cash"]})
    assert r.status_code == 422
    assert api.get("/payment-links/999").status_code == 404


def test_scopes(api_for):
    reader = api_for(["subscriptions:read"])
    assert reader.post("/payment-links", {"line_items": [item()]}).status_code == 403
    assert reader.get("/payment-links").status_code == 200
