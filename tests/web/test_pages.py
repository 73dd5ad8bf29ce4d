"""Seller pages: first-run setup, login, record pages in English and Dutch (R-ALL-1..3, R-OBJ-4)."""

import pytest
from django.test import Client

from recur.core.models import User
from recur.crm import services as crm

pytestmark = pytest.mark.django_db


def test_first_run_leads_to_setup_and_creates_the_super_admin(client):
    r = client.get("/")
    assert r.status_code == 302 and r["Location"] == "/setup/"
    r = client.post("/setup/", {"name": "Ada", "email": "ada@example.com", "password": "long-enough-1",
                                "password2": "different-2"})
    assert r.status_code == 200 and "The passwords differ." in r.content.decode()
    assert not User.objects.exists()
    r = client.post("/setup/", {"name": "Ada", "email": "ada@example.com", "password": "long-enough-1",
                                "password2": "long-enough-1"})
    assert r.status_code == 302
    user = User.objects.get()
    assert user.is_superuser and user.role == "super_admin"
    assert client.get("/").status_code == 200
    # the setup page is one-time only
    assert Client().get("/setup/")["Location"] == "/login/"


def test_login_and_contact_page_with_history(admin):
    c = Client()
    assert c.get("/contacts/")["Location"].startswith("/login/")
    r = c.post("/login/", {"username": "admin@example.com", "password": "wrong"})
    assert r.status_code == 200 and not r.wsgi_request.user.is_authenticated
    r = c.post("/login/", {"username": "admin@example.com", "password": "correct-horse-9"})
    assert r.status_code == 302
    contact = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl"})
    crm.update_contact(admin, contact, {"city": "Utrecht"})
    page = c.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Anna de Vries" in page and "Utrecht" in page and "History" in page
    assert "Created" in page and "Updated" in page and "by Ada Admin" in page
    assert "Anna de Vries" in c.get("/contacts/").content.decode()


def test_language_switch_to_dutch(admin):
    c = Client()
    c.force_login(admin)
    assert "Contactpersonen" not in c.get("/contacts/").content.decode()
    c.post("/language/", {"language": "nl", "next": "/contacts/"})
    admin.refresh_from_db()
    assert admin.language == "nl"
    page = c.get("/contacts/").content.decode()
    assert "Contactpersonen" in page and 'lang="nl"' in page


def test_login_page_renders(client, admin):
    r = client.get("/login/")
    assert r.status_code == 200 and "Log in" in r.content.decode()
