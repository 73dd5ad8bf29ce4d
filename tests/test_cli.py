"""The ``recur`` command line (SPEC §12): user create, token create, demo, worker."""

import io

import pytest

from recur.cli import main
from recur.core.auth import authenticate_token
from recur.core.models import User
from recur.crm.models import Contact

pytestmark = pytest.mark.django_db(transaction=True)


def test_user_and_token_create(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    assert main(["user", "create", "--email", "Boss@Example.com", "--password-stdin", "--super-admin"]) == 0
    user = User.objects.get()
    assert user.email == "boss@example.com" and user.is_superuser and user.check_password("s3cret-password")
    capsys.readouterr()
    assert main(["token", "create", "--email", "boss@example.com", "--name", "ci", "--scopes", "crm:read"]) == 0
    raw = capsys.readouterr().out.strip()
    token = authenticate_token(raw)
    assert token.user == user and token.scopes == ["crm:read"]
    assert raw not in str(list(User.objects.values()))  # only the hash is stored


def test_bad_cli_input(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["user", "create", "--email", "x@example.com", "--password-stdin"]) == 1
    assert "password" in capsys.readouterr().err
    assert main(["token", "create", "--email", "nobody@example.com", "--name", "x"]) == 1
    assert not User.objects.exists()


def test_demo_loads_and_prints_login(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "Demo login:" in out and Contact.objects.count() == 12
    from recur.subscriptions.models import Subscription

    statuses = set(Subscription.objects.values_list("status", flat=True))
    assert statuses == {"active", "past_due", "canceled", "expired", "scheduled", "paused"}
    assert main(["demo"]) == 0  # a second run changes nothing
    assert Contact.objects.count() == 12


def test_worker_once_runs():
    assert main(["worker", "--once"]) == 0
