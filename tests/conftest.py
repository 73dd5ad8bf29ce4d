import json

import pytest
from django.test import Client

from recur.core.auth import create_token, create_user


@pytest.fixture
def admin(db):
    return create_user("admin@example.com", "correct-horse-9", super_admin=True, name="Ada Admin")


class Api:
    """A JSON client for /api/v1 with a bearer token."""

    def __init__(self, token: str):
        self.client = Client()
        self.token = token

    def _headers(self, extra):
        h = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}
        for k, v in (extra or {}).items():
            h["HTTP_" + k.upper().replace("-", "_")] = v
        return h

    def get(self, path, **params):
        return self.client.get("/api/v1" + path, params, **self._headers(None))

    def post(self, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(body or {})
        return self.client.post("/api/v1" + path, data, content_type="application/json", **self._headers(headers))

    def patch(self, path, body):
        return self.client.patch("/api/v1" + path, json.dumps(body), content_type="application/json",
                                 **self._headers(None))

    def delete(self, path):
        return self.client.delete("/api/v1" + path, **self._headers(None))


@pytest.fixture
def api(admin):
    _, raw = create_token(admin, "tests")
    return Api(raw)


@pytest.fixture
def api_for(admin):
    def make(scopes):
        _, raw = create_token(admin, "scoped", scopes)
        return Api(raw)

    return make


def pytest_report_header(config):
    from django.db import connection

    return f"recur database: {connection.vendor}"


@pytest.fixture(autouse=True)
def _fresh_engine_state():
    """The engine remembers per process when it last reconciled pending attempts; tests start fresh."""
    from recur.billing import engine

    engine._last_reconcile = None
    yield


@pytest.fixture(autouse=True)
def _fresh_account_settings():
    """The account's settings are cached in the process; a test's rolled-back changes must not leak."""
    from recur.core import account

    account.forget()
    yield
    account.forget()


@pytest.fixture(autouse=True)
def _english_to_start():
    """Services translate their errors in the active language, and a request through the test client leaves
    its language active in the thread: every test starts in English, as a fresh process does."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture
def on():
    """Pin Recur's clock to a date (9:00 in the account's time zone); call again to move it."""
    import datetime as dt

    from recur.core import clock

    stack: list = []

    def move(day: dt.date):
        if stack:
            stack.pop().__exit__(None, None, None)
        cm = clock.freeze(day)
        cm.__enter__()
        stack.append(cm)

    yield move
    if stack:
        stack.pop().__exit__(None, None, None)
