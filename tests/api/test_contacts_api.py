"""Contacts and companies through the REST API (SPEC §12, R-OBJ-1, R-OBJ-3, R-OBJ-4, R-ALL-4)."""

import pytest

from recur.crm.models import Company, Contact, ContactEmail

pytestmark = pytest.mark.django_db


def test_create_list_update_delete_contact(api):
    r = api.post("/contacts", {"name": "Anna de Vries", "email": "Anna@Example.nl", "language": "nl"})
    assert r.status_code == 201, r.content
    c = r.json()
    assert c["email"] == "anna@example.nl" and c["language"] == "nl" and c["id"] > 0
    assert c["created_at"].endswith("+00:00")

    r = api.get("/contacts")
    assert [x["id"] for x in r.json()["items"]] == [c["id"]] and r.json()["next"] is None

    r = api.patch(f"/contacts/{c['id']}", {"city": "Utrecht", "other_emails": ["anna@work.nl"]})
    assert r.status_code == 200 and r.json()["city"] == "Utrecht"
    assert r.json()["other_emails"] == ["anna@work.nl"]
    assert api.get("/contacts", email="anna@work.nl").json()["items"][0]["id"] == c["id"]

    assert api.delete(f"/contacts/{c['id']}").status_code == 204
    assert api.get(f"/contacts/{c['id']}").status_code == 404
    assert not ContactEmail.objects.exists()


def test_history_shows_each_change(api, admin):
    c = api.post("/contacts", {"name": "Bram", "email": "bram@example.nl"}).json()
    api.patch(f"/contacts/{c['id']}", {"name": "Bram Jansen"})
    api.patch(f"/contacts/{c['id']}", {"language": "nl", "city": "Delft"})
    items = api.get(f"/contacts/{c['id']}/history").json()["items"]
    assert [i["action"] for i in items] == ["created", "updated", "updated"]
    assert items[1]["changes"] == {"name": ["Bram", "Bram Jansen"]}
    assert items[2]["changes"] == {"language": ["en", "nl"], "city": ["", "Delft"]}
    assert all(i["actor"] == admin.email for i in items)


def test_cursor_pagination(api):
    ids = [api.post("/contacts", {"name": f"C{i}"}).json()["id"] for i in range(7)]
    seen, after = [], None
    while True:
        page = api.get("/contacts", limit=3, **({"after": after} if after else {})).json()
        seen += [x["id"] for x in page["items"]]
        after = page["next"]
        if not after:
            break
    assert seen == ids
    r = api.get("/contacts", limit=0)
    assert r.status_code == 422 and r.json()["error"]["field"] == "limit"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "X", "email": "not-an-email"}, "email"),
        ({"email": "x@example.com"}, "name"),
        ({"name": "X", "language": "xx"}, "language"),
        ({"name": "X", "other_emails": ["fine@example.com", "bad"]}, "other_emails[1]"),
    ],
)
def test_bad_contact_input_names_the_field_and_saves_nothing(api, body, field):
    r = api.post("/contacts", body)
    assert r.status_code == 422, r.content
    err = r.json()["error"]
    assert err["field"] == field and err["message"]
    assert not Contact.objects.exists()


def test_duplicate_primary_email_is_refused(api):
    api.post("/contacts", {"name": "A", "email": "same@example.com"})
    r = api.post("/contacts", {"name": "B", "email": "SAME@example.com"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "email"
    other = api.post("/contacts", {"name": "C", "email": "c@example.com"}).json()
    r = api.patch(f"/contacts/{other['id']}", {"other_emails": ["same@example.com"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "other_emails"
    assert Contact.objects.count() == 2


def test_malformed_json_and_missing_token(api):
    r = api.post("/contacts", raw="{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    api.token = None
    assert api.get("/contacts").status_code == 401
    api.token = "rcr_wrong"
    r = api.post("/contacts", {"name": "X"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert not Contact.objects.exists()


def test_scopes_are_enforced(api_for):
    reader = api_for(["crm:read"])
    assert reader.get("/contacts").status_code == 200
    r = reader.post("/contacts", {"name": "X"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    assert api_for(["subscriptions:read"]).get("/companies").status_code == 403
    assert not Contact.objects.exists()


def test_companies_and_associations(api):
    co = api.post("/companies", {"name": "Bakkerij Jansen", "domains": ["https://www.Jansen.nl/", "jansen.com"]})
    assert co.status_code == 201 and co.json()["domains"] == ["jansen.nl", "jansen.com"]
    co = co.json()
    ct = api.post("/contacts", {"name": "Piet"}).json()
    r = api.post(f"/contacts/{ct['id']}/associations", {"to_type": "company", "to_id": co["id"]})
    assert r.status_code == 201
    assert api.post(f"/contacts/{ct['id']}/associations", {"to_type": "company", "to_id": co["id"]}).status_code == 200
    assert api.get(f"/companies/{co['id']}/associations").json()["items"] == [
        {"type": "contact", "id": ct["id"], "label": ""}
    ]
    r = api.post(f"/contacts/{ct['id']}/associations", {"to_type": "company", "to_id": 999999})
    assert r.status_code == 422 and r.json()["error"]["field"] == "to_id"
    r = api.post(f"/contacts/{ct['id']}/associations", {"to_type": "spaceship", "to_id": 1})
    assert r.status_code == 422 and r.json()["error"]["field"] == "type"
    assert api.delete(f"/contacts/{ct['id']}/associations/company/{co['id']}").status_code == 204
    assert api.get(f"/companies/{co['id']}/associations").json()["items"] == []
    r = api.post("/companies", {"name": "Bad", "domains": ["not a domain"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "domains"
    assert Company.objects.count() == 1


def test_deals_and_products_money(api):
    p = api.post("/products", {"name": "Support plan", "sku": "SUP", "unit_price": {"amount": "49.00", "currency": "eur"},
                                "billing_frequency": "monthly"})
    assert p.status_code == 201, p.content
    assert p.json()["unit_price"] == {"amount": "49.00", "currency": "EUR"}
    r = api.post("/products", {"name": "Yen", "unit_price": {"amount": "10.5", "currency": "JPY"}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "unit_price.amount"
    r = api.post("/products", {"name": "X", "unit_price": {"amount": "1.00", "currency": "EUR"}, "billing_frequency": "daily"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "billing_frequency"
    r = api.post("/products", {"name": "Dup", "sku": "SUP", "unit_price": {"amount": "1.00", "currency": "EUR"}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "sku"
    d = api.post("/deals", {"name": "Big deal", "amount": {"amount": "1200.00", "currency": "EUR"}, "stage": "qualified_to_buy"})
    assert d.status_code == 201 and d.json()["amount"] == {"amount": "1200.00", "currency": "EUR"}
    r = api.patch(f"/deals/{d.json()['id']}", {"stage": "nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "stage"
    r = api.patch(f"/products/{p.json()['id']}", {"archived": True})
    assert r.json()["archived"] is True


def test_idempotency_key_replays_and_conflicts(api):
    body = {"name": "Once", "email": "once@example.com"}
    r1 = api.post("/contacts", body, headers={"Idempotency-Key": "k-1"})
    r2 = api.post("/contacts", body, headers={"Idempotency-Key": "k-1"})
    assert r1.status_code == r2.status_code == 201
    assert r1.json() == r2.json() and r2["Idempotent-Replayed"] == "true"
    assert Contact.objects.count() == 1
    r3 = api.post("/contacts", {"name": "Other"}, headers={"Idempotency-Key": "k-1"})
    assert r3.status_code == 409 and r3.json()["error"]["code"] == "idempotency_conflict"
    assert Contact.objects.count() == 1


def test_openapi_document(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in ("/api/v1/contacts", "/api/v1/companies", "/api/v1/deals", "/api/v1/products",
              "/api/v1/contacts/{record_id}/associations"):
        assert p in paths


def test_openapi_operation_ids_are_unique(client):
    """Generated clients need one id per operation."""
    import collections

    paths = client.get("/api/v1/openapi.json").json()["paths"]
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert [k for k, n in collections.Counter(ids).items() if n > 1] == []
