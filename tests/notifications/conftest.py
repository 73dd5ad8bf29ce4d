"""A real SMTP server (aiosmtpd) on loopback, and helpers to queue e-mails."""

from __future__ import annotations

import datetime as dt
import email
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from recur.notifications import services

T0 = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.timezone.utc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    """Accepts every message except for recipients starting with "bounce" (550)."""

    def __init__(self):
        self.envelopes = []
        self.logins = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)


class SmtpServer:
    def __init__(self, port: int, auth: bool = False):
        self.port, self.auth = port, auth
        self.handler = Collector()
        self.controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        extra = {"authenticator": self.handler.authenticate, "auth_require_tls": False} if self.auth else {}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **extra)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    @property
    def envelopes(self):
        return self.handler.envelopes

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.original_content, policy=policy.default) for e in self.envelopes]


@pytest.fixture
def smtp():
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


def receipt(to_email: str = "anna@example.nl", *, language: str = "en", to_name: str = "Anna de Vries", **kw):
    """Queue a payment receipt (the most common e-mail)."""
    context = {
        "subscription_name": "Support plan", "amount": services.money(4900, "EUR"), "paid_on": "2027-03-01",
        "period_start": "2027-03-01", "period_end": "2027-04-01",
        "payment_method": {"type": "card", "brand": "visa", "last4": "4242"},
    }
    return services.queue_email("payment_receipt", to_email, to_name=to_name, language=language, context=context,
                                record=("payment", 1), **kw)
