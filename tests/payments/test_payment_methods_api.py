"""/contacts/{id}/payment-methods and the payment-method services (SPEC §12, R-PAY-1, R-ALL-4)."""

import logging

import pytest
from django.apps import apps
from django.db import connection

from recur.core import clock, records
from recur.core.errors import ValidationFailed
from recur.payments import services
from recur.payments.models import BuiltinToken, PaymentMethod, ProcessorCustomer
from tests.payments.conftest import MONDAY, bank, card

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def today_is_monday():
    with clock.freeze(MONDAY):
        yield


@pytest.fixture
def cid(api):
    return api.post("/contacts", {"name": "Anna de Vries", "email": "anna@example.nl"}).json()["id"]


def test_add_list_remove(api, cid, admin):
    r = api.post(f"/contacts/{cid}/payment-methods", card())
    assert r.status_code == 201, r.content
    visa = r.json()
    assert {k: visa[k] for k in ("type", "brand", "last4", "exp_month", "exp_year")} == {
        "type": "card", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}
    assert visa["id"] > 0 and visa["created_at"].endswith("+00:00") and visa["contact_id"] == cid

    r = api.post(f"/contacts/{cid}/payment-methods", bank())
    assert r.status_code == 201, r.content
    ach = r.json()
    assert (ach["type"], ach["last4"], ach["exp_month"], ach["exp_year"]) == ("bank_account", "6789", None, None)

    listed = api.get(f"/contacts/{cid}/payment-methods").json()
    assert [m["id"] for m in listed["items"]] == [visa["id"], ach["id"]] and listed["next"] is None
    assert listed["items"][0] == visa

    assert api.delete(f"/contacts/{cid}/payment-methods/{visa['id']}").status_code == 204
    assert [m["id"] for m in api.get(f"/contacts/{cid}/payment-methods").json()["items"]] == [ach["id"]]
    assert api.delete(f"/contacts/{cid}/payment-methods/{visa['id']}").status_code == 404
    removed = PaymentMethod.objects.get(pk=visa["id"])  # soft delete: past payments keep their method
    assert removed.removed_at is not None
    actions = [(h.action, h.actor_id) for h in records.history("payment_method", visa["id"])]
    assert actions == [("created", admin.pk), ("updated", admin.pk)]


def test_methods_belong_to_their_contact(api, cid):
    other = api.post("/contacts", {"name": "Bram"}).json()["id"]
    mid = api.post(f"/contacts/{cid}/payment-methods", card()).json()["id"]
    assert api.get(f"/contacts/{other}/payment-methods").json()["items"] == []
    assert api.delete(f"/contacts/{other}/payment-methods/{mid}").status_code == 404
    assert api.get("/contacts/999999/payment-methods").status_code == 404
    assert api.post("/contacts/999999/payment-methods", card()).status_code == 404


@pytest.mark.parametrize("body, field", [
    (card("4242424242424241"), "card.number"),
    (card(exp_month=2, exp_year=2027), "card.exp_month"),
    (card(exp_year=2020), "card.exp_year"),
    (card(cvc="1"), "card.cvc"),
    ({"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030}}, "card.cvc"),
    ({"type": "card"}, "card"),
    ({"type": "iban"}, "type"),
    (bank(routing="123456789"), "bank_account.routing_number"),
    ({"type": "bank_account", "bank_account": {"routing_number": "110000000", "account_number": "000123456789"}},
     "bank_account.holder_name"),
    ({"type": "stripe", "stripe_payment_method": "pm_123"}, "type"),
])
def test_bad_details_are_422_naming_the_field_and_save_nothing(api, cid, body, field):
    r = api.post(f"/contacts/{cid}/payment-methods", body)
    assert r.status_code == 422, r.content
    err = r.json()["error"]
    assert err["field"] == field and err["message"], err
    assert "4242424242424242" not in r.content.decode()
    assert not PaymentMethod.objects.exists() and not BuiltinToken.objects.exists()
    assert not ProcessorCustomer.objects.exists()


def test_stripe_details_need_the_stripe_processor(api, cid):
    r = api.post(f"/contacts/{cid}/payment-methods", {"type": "stripe", "stripe_payment_method": "pm_123"})
    assert r.json()["error"]["message"] == "type: stripe payment methods need RECUR_PROCESSOR=stripe"


def test_scopes(api_for, api, cid):
    mid = api.post(f"/contacts/{cid}/payment-methods", card()).json()["id"]
    reader = api_for(["billing:read"])
    assert reader.get(f"/contacts/{cid}/payment-methods").status_code == 200
    assert reader.post(f"/contacts/{cid}/payment-methods", card()).status_code == 403
    assert reader.delete(f"/contacts/{cid}/payment-methods/{mid}").status_code == 403
    assert api_for(["crm:read"]).get(f"/contacts/{cid}/payment-methods").status_code == 403
    api.token = None
    assert api.get(f"/contacts/{cid}/payment-methods").status_code == 401
    assert PaymentMethod.objects.filter(removed_at__isnull=True).count() == 1


def test_openapi_lists_the_routes(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/contacts/{contact_id}/payment-methods" in paths
    assert "/api/v1/contacts/{contact_id}/payment-methods/{method_id}" in paths


def test_services_directly(contact):
    method = services.add_payment_method(None, contact, card("5555555555554444"))
    assert (method.brand, method.processor, method.owner_id) == ("mastercard", "builtin", None)
    assert list(services.list_payment_methods(contact)) == [method]
    assert services.get_payment_method(contact, method.pk) == method
    services.remove_payment_method(None, method)
    assert services.remove_payment_method(None, method).removed_at is not None  # removing twice is harmless
    assert not services.list_payment_methods(contact).exists()
    with pytest.raises(ValidationFailed) as exc:
        services.add_payment_method(None, contact, "not a dict")
    assert exc.value.field == "type"


# --- no full card number or CVC is kept anywhere --------------------------------------

SECRETS = ("4242424242424242", "4000000000000341", "5555555555554444", "378282246310005", "000123456789")
CVCS = ("7391", "8264")


def _every_cell():
    """Every value of every row of every table in the database."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    yield table, value


def test_no_full_card_number_or_cvc_is_stored_or_logged(api, cid, caplog):
    for logger in ("", "django", "recur"):
        caplog.set_level(logging.DEBUG, logger=logger)
    connection.force_debug_cursor = True  # log every SQL statement with its parameters
    try:
        for number, cvc in zip(SECRETS[:4], CVCS * 2):
            body = card(number, cvc=cvc)
            r = api.post(f"/contacts/{cid}/payment-methods", body, headers={"Idempotency-Key": f"add-{number[-4:]}"})
            assert r.status_code == 201, r.content
            assert number not in r.content.decode()
        assert api.post(f"/contacts/{cid}/payment-methods", bank("000123456789")).status_code == 201
        assert api.post(f"/contacts/{cid}/payment-methods", card(SECRETS[0], exp_year=1999)).status_code == 422
        api.get(f"/contacts/{cid}/payment-methods")
    finally:
        connection.force_debug_cursor = False
    assert any("payments_paymentmethod" in rec.getMessage() for rec in caplog.records)  # the SQL was logged

    ours = {m._meta.db_table for m in apps.get_app_config("payments").get_models()}
    assert ours <= set(connection.introspection.table_names())
    cells = list(_every_cell())
    assert any(t == "payments_paymentmethod" for t, _ in cells)
    for table, value in cells:
        text = value.decode("utf-8", "replace") if isinstance(value, (bytes, memoryview)) else str(value)
        for secret in SECRETS:
            assert secret not in text, f"{table} holds a full number"
        assert text not in CVCS, f"{table} holds a CVC"
        assert "cvc" not in text.lower(), f"{table} mentions a CVC"
    for record in caplog.records:
        message = record.getMessage() + str(record.args or "")
        for secret in SECRETS:
            assert secret not in message, f"logged by {record.name}"
    assert {m.last4 for m in PaymentMethod.objects.all()} == {"4242", "0341", "4444", "0005", "6789"}
