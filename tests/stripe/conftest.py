"""The Stripe processor against a real localstripe on loopback (R-PAY-2, R-PAY-3).

One localstripe per test session (started by ``localstripe`` below, stopped at the
end); its store is emptied before every test, so Stripe-side objects never leak
from one test into the next (SQLite reuses rolled-back ids, and so idempotency
keys, from test to test).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from recur.crm import services as crm
from recur.payments import services as payments

API_KEY = "sk_test_recur_localstripe"
WEBHOOK_SECRET = "whsec_recur_test_secret"
LAUNCHER = Path(__file__).with_name("localstripe_server.py")

CARDS = {
    "ok": "4242424242424242",
    "declined": "4000000000000002",  # Stripe (and localstripe) decline it when it is attached
    "fail_charges": "4000000000000341",  # attaches, every charge is declined (card_declined)
}
IBAN_OK = "DE89370400440532013000"
IBAN_FAILS = "DE62370400440532013001"  # localstripe: the debit stays processing, then fails


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe():
    """Start localstripe (``tests/stripe/localstripe_server.py``) once; yield its API base."""
    port = _free_port()
    log = tempfile.NamedTemporaryFile(prefix="localstripe-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, str(LAUNCHER), str(port)], stdout=log, stderr=subprocess.STDOUT,
                            cwd=tempfile.gettempdir(), env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"localstripe exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"localstripe did not answer on {base}: {Path(log.name).read_text()[-2000:]}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        os.unlink(log.name)


def _flush(base: str) -> None:
    request = urllib.request.Request(base + "/_config/data", method="DELETE")
    with urllib.request.urlopen(request, timeout=10):
        pass


@pytest.fixture
def stripe_settings(settings, localstripe):
    """Point Recur at localstripe with RECUR_PROCESSOR=stripe, on an empty Stripe account.

    Each test is also its own Recur installation (its own SECRET_KEY, so its own
    idempotency-key prefix): SQLite hands the same ids to every test, and a late
    event localstripe still sends about an earlier test must never match an
    attempt of this one.
    """
    _flush(localstripe)
    settings.SECRET_KEY = f"recur-stripe-test-{uuid.uuid4().hex}"
    settings.RECUR_PROCESSOR = "stripe"
    settings.STRIPE_API_KEY = API_KEY
    settings.STRIPE_API_BASE = localstripe
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return settings


@pytest.fixture
def sc(stripe_settings):
    """The SDK client Recur uses, to look at (or prepare) the Stripe side."""
    from recur.payments.stripe import client

    return client()


@pytest.fixture
def processor(stripe_settings):
    from recur.payments.stripe import StripeProcessor

    return StripeProcessor()


@pytest.fixture
def contact(db):
    return crm.create_contact(None, {"name": "Anna de Vries", "email": "anna@example.nl", "language": "nl"})




def card(number="4242424242424242", exp_month=12, exp_year=2035, cvc="123"):
    return {"type": "card", "card": {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc}}


def item(**kw):
    base = {"name": "Support plan", "unit_price": {"amount": "49.00", "currency": "EUR"}, "quantity": 1,
            "billing_frequency": "monthly"}
    base.update(kw)
    return base


@pytest.fixture
def buyer(admin):
    """A contact with a saved card, through the processor in force (built-in or Stripe)."""

    def make(kind="ok", email="anna@example.nl", language="nl"):
        contact = crm.create_contact(admin, {"name": "Anna de Vries", "email": email, "language": language})
        pm = payments.add_payment_method(admin, contact, card(CARDS[kind])) if kind else None
        return contact, pm

    return make


def intents(sc, key: str | None = None) -> list[dict]:
    """Every PaymentIntent localstripe holds (for one idempotency key, when given)."""
    out = [p.to_dict() for p in sc.v1.payment_intents.list({"limit": 100}).auto_paging_iter()]
    if key is not None:
        out = [p for p in out if (p.get("metadata") or {}).get("recur_idempotency_key") == key]
    return out


def sepa_method(sc, iban: str = IBAN_OK) -> str:
    """A SEPA Direct Debit PaymentMethod made at Stripe (as Stripe.js would), not yet attached."""
    return sc.v1.payment_methods.create({"type": "sepa_debit", "sepa_debit": {"iban": iban},
                                         "billing_details": {"name": "Anna de Vries"}}).id


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header made as Stripe makes it."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def event(type_: str, pi: dict, event_id: str | None = None) -> bytes:
    """A Stripe event envelope around a PaymentIntent snapshot."""
    return json.dumps({
        "id": event_id or f"evt_test_{hashlib.sha1(json.dumps([type_, pi['id'], time.time()]).encode()).hexdigest()[:14]}",
        "object": "event", "type": type_, "api_version": "2026-10-28.endive", "created": int(time.time()),
        "livemode": False, "data": {"object": pi},
    }).encode()


def post_webhook(client, payload: bytes, signature: str | None = None, **headers):
    if signature is not None:
        headers["HTTP_STRIPE_SIGNATURE"] = signature
    return client.post("/webhooks/stripe/", payload, content_type="application/json", **headers)
