"""The ``recur`` command line (SPEC §12). Thin: it parses arguments and calls services."""

from __future__ import annotations

import argparse
import os
import sys


def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recur.settings")
    import django

    django.setup()


def _migrate(verbosity: int = 0) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)


def cmd_serve(args) -> int:
    _django()
    _migrate(verbosity=1)
    from waitress import serve

    from recur.core import worker
    from recur.wsgi import application

    stop = None
    if not args.no_worker:
        stop = worker.start_in_thread()
    print(f"Recur is serving on http://{args.host}:{args.port}/ (worker: {'off' if args.no_worker else 'on'})", flush=True)
    try:
        serve(application, host=args.host, port=args.port, threads=args.threads, ident="Recur")
    finally:
        if stop is not None:
            stop.set()
    return 0


def cmd_worker(args) -> int:
    _django()
    from recur.core import worker

    if args.once:
        worker.run_once()
        return 0
    worker.run_forever(interval=args.interval)
    return 0


def cmd_bill(args) -> int:
    _django()
    import datetime as dt

    from django.conf import settings

    from recur.billing import engine
    from recur.core import clock

    if args.until:
        try:
            until = dt.date.fromisoformat(args.until)
        except ValueError:
            print(f"error: --until: {args.until!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
            return 2
        if until > clock.today() and not settings.RECUR_TEST_MODE:
            print("error: --until: a future date needs test mode (RECUR_TEST_MODE=1)", file=sys.stderr)
            return 2
        summary = engine.run_until(until) if until > clock.today() else engine.run(until)
    else:
        summary = engine.run()
    print(f"Billed up to {clock.today()}: {summary.charged} charged, {summary.failed} failed, "
          f"{summary.pending} pending, {summary.invoices_issued} invoices issued, "
          f"{summary.emails_queued} e-mails queued, {summary.expired} expired, {summary.canceled} canceled")
    return 0


def cmd_user_create(args) -> int:
    _django()
    from recur.core.auth import create_user
    from recur.core.errors import ServiceError

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    if not password:
        print("error: pass the password on standard input with --password-stdin", file=sys.stderr)
        return 2
    try:
        user = create_user(args.email, password, super_admin=args.super_admin, name=args.name or "",
                           language=args.language)
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"Created {user.role.replace('_', ' ')} {user.email} (id {user.pk})")
    return 0


def cmd_token_create(args) -> int:
    _django()
    from recur.core.auth import create_token
    from recur.core.errors import ServiceError
    from recur.core.models import User

    user = User.objects.filter(email=args.email.strip().lower()).first()
    if user is None:
        print(f"error: email: no user with e-mail {args.email}", file=sys.stderr)
        return 1
    scopes = [s for part in (args.scopes or []) for s in part.split(",") if s]
    try:
        _, raw = create_token(user, args.name, scopes or None)
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(raw)
    return 0


def cmd_demo(args) -> int:
    _django()
    _migrate()
    from recur.demo import load_demo

    for line in load_demo():
        print(line)
    return 0


def cmd_manage(args) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recur.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["recur manage", *args.rest])
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recur", description="Recur: self-hosted subscription billing")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="migrate, then serve the web app and API (with the billing worker)")
    s.add_argument("--host", default=os.environ.get("RECUR_HOST", "127.0.0.1"))
    s.add_argument("--port", type=int, default=int(os.environ.get("RECUR_PORT", "8000")))
    s.add_argument("--threads", type=int, default=8)
    s.add_argument("--no-worker", action="store_true", help="do not run the billing worker in this process")
    s.set_defaults(func=cmd_serve)

    w = sub.add_parser("worker", help="run the billing worker alone (start as many as you like on PostgreSQL)")
    w.add_argument("--interval", type=float, default=float(os.environ.get("RECUR_WORKER_INTERVAL", "10")))
    w.add_argument("--once", action="store_true", help="run every job once and exit")
    w.set_defaults(func=cmd_worker)

    b = sub.add_parser("bill", help="bill everything due up to now (or --until DATE in test mode)")
    b.add_argument("--until", help="YYYY-MM-DD; a future date moves the simulated clock (test mode only)")
    b.set_defaults(func=cmd_bill)

    u = sub.add_parser("user", help="manage logins")
    usub = u.add_subparsers(dest="user_command", required=True)
    uc = usub.add_parser("create", help="create a login")
    uc.add_argument("--email", required=True)
    uc.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    uc.add_argument("--super-admin", action="store_true")
    uc.add_argument("--name")
    uc.add_argument("--language", default="en", choices=["en", "nl"])
    uc.set_defaults(func=cmd_user_create)

    t = sub.add_parser("token", help="manage API tokens")
    tsub = t.add_subparsers(dest="token_command", required=True)
    tc = tsub.add_parser("create", help="print a new API token once")
    tc.add_argument("--email", required=True)
    tc.add_argument("--name", required=True)
    tc.add_argument("--scopes", nargs="*", help="e.g. crm:read crm:write (default: all)")
    tc.set_defaults(func=cmd_token_create)

    d = sub.add_parser("demo", help="load a realistic demo data set")
    d.set_defaults(func=cmd_demo)

    m = sub.add_parser("manage", help="run a Django management command (migrate, shell, …)")
    m.add_argument("rest", nargs=argparse.REMAINDER)
    m.set_defaults(func=cmd_manage)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
