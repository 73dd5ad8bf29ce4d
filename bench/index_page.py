"""Benchmark: the subscriptions index page (R-VIEW-1) on a big table.

    .venv/bin/python bench/index_page.py --n 1000000 --db postgres|sqlite [--extra-indexes]

Fills a fresh database with N subscriptions (and N/10 contacts) in plain SQL
(set-up, not measured), then times the first page of All, Unpaid, Scheduled, a
status filter and a next-payment-date range filter — plus a sorted page, a page
reached through the "Next" cursor, an advanced filter and a saved view — through
the real view (Django test client, logged in), and prints the median
milliseconds per page. The baseline, measured in the same run, is a plain
``SELECT … ORDER BY id DESC LIMIT 50`` on the same table; each page's ratio to it
shows the cost of filtering, counting and rendering, and since the baseline is
on the same machine, machine noise cancels out. With ``--extra-indexes`` it also
creates the indexes proposed for the subscriptions app (see the report in the
commit) before timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

EXTRA_INDEXES = [
    # keyset paging on a sorted column needs (column, id); the first page of a date range in id order
    "CREATE INDEX IF NOT EXISTS sub_npd_id_idx ON subscriptions_subscription (next_payment_date, id)",
    "CREATE INDEX IF NOT EXISTS sub_start_id_idx ON subscriptions_subscription (start_date, id)",
    "CREATE INDEX IF NOT EXISTS sub_amount_id_idx ON subscriptions_subscription (amount, id)",
    "CREATE INDEX IF NOT EXISTS sub_name_id_idx ON subscriptions_subscription (name, id)",
]


def prepare_database(db: str) -> str:
    from billing_run import prepare_database as prep

    return prep(db)


def drop_database(db: str, url: str) -> None:
    from billing_run import drop_database as drop

    drop(db, url)


STATUS_SQL = ("CASE WHEN i % 100 < 70 THEN 'active' WHEN i % 100 < 80 THEN 'past_due' WHEN i % 100 < 88 "
              "THEN 'scheduled' WHEN i % 100 < 93 THEN 'paused' WHEN i % 100 < 98 THEN 'canceled' ELSE 'expired' END")


def fill(n: int, today: dt.date, vendor: str) -> None:
    """N subscriptions over N/10 contacts, in plain SQL (INSERT … SELECT over a number series)."""
    from django.db import connection, transaction

    contacts = max(1, n // 10)
    now = f"'{today.isoformat()} 09:00:00+00'" if vendor == "postgresql" else f"'{today.isoformat()} 09:00:00'"
    day = (f"DATE '{today.isoformat()}'" if vendor == "postgresql" else f"date('{today.isoformat()}')")

    def plus_days(expr):
        return f"({day} + ({expr})::int)" if vendor == "postgresql" else f"date({day}, ({expr}) || ' days')"

    def series(count):
        if vendor == "postgresql":
            return f"generate_series(1, {count}) AS s(i)"
        return (f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {count}) "
                "SELECT i FROM s)")

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "INSERT INTO crm_contact (name, email, other_emails, phone, language, address_line1, address_line2,"
            " postal_code, city, region, country, owner_id, created_at, updated_at)"
            f" SELECT 'Buyer ' || i, 'buyer' || i || '@example.com', '[]', '', 'en', '', '', '', '', '', '', NULL,"
            f" {now}, {now} FROM {series(contacts)}")
        cur.execute("SELECT min(id) FROM crm_contact")
        first_contact = cur.fetchone()[0]
        false = "FALSE" if vendor == "postgresql" else "0"
        npd = (f"CASE WHEN i % 100 >= 93 THEN NULL ELSE {plus_days('i % 365')} END")
        cur.execute(
            "INSERT INTO subscriptions_subscription (name, status, collection, billing_frequency, billing_terms,"
            " number_of_payments, start_date, end_date, next_payment_date, last_payment_date, payments_made, amount,"
            " currency, total_paid, payment_terms, accept_online_payments, accepted_payment_methods, contact_id,"
            " company_id, quote_id, payment_method_id, billing_address, billed_through, anchor_index, canceled_at,"
            " cancel_mode, cancel_at, paused_at, owner_id, created_at, updated_at, collect_billing_address,"
            " collect_shipping_address, save_payment_method, shipping_address)"
            f" SELECT 'Plan ' || (i % 997), {STATUS_SQL}, 'manual', 'monthly', 'auto_renew',"
            f" NULL, {plus_days('-(i % 700)')}, NULL, {npd}, NULL, 1, 1000 + (i * 37 % 100) * 100, 'EUR', 0,"
            f" 'due_on_receipt', {'TRUE' if vendor == 'postgresql' else '1'}, '[]',"
            f" {first_contact} + (i % {contacts}), NULL, NULL, NULL, '{{}}', 0, 0, NULL, '', NULL, NULL, NULL,"
            f" {now}, {now}, {false}, {false}, {false}, '{{}}' FROM {series(n)}")
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def timed(fn, runs: int) -> float:
    fn()  # warm up (query plans, template cache)
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--extra-indexes", action="store_true", help="create the proposed indexes first")
    args = p.parse_args()

    url = prepare_database(args.db)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "recur.settings"
    os.environ.setdefault("RECUR_LOG_LEVEL", "WARNING")
    os.environ.setdefault("RECUR_DATA_DIR", tempfile.mkdtemp(prefix="recur-bench-"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.http import QueryDict
    from django.test import Client
    from django.test.utils import setup_test_environment

    from recur.core import clock
    from recur.core.auth import create_user
    from recur.web import services as web_services
    from recur.web import subscription_index as ix

    setup_test_environment()
    call_command("migrate", verbosity=0)
    today = dt.date(2027, 3, 1)
    try:
        with clock.freeze(today):
            t = time.perf_counter()
            fill(args.n, today, connection.vendor)
            if args.extra_indexes:
                with connection.cursor() as cur:
                    for sql in EXTRA_INDEXES:
                        cur.execute(sql)
                    cur.execute("ANALYZE")
            setup = time.perf_counter() - t
            user = create_user("bench@example.com", "correct-horse-9", super_admin=True, name="Bench")
            client = Client()
            client.force_login(user)
            week = (today + dt.timedelta(days=30)).isoformat(), (today + dt.timedelta(days=36)).isoformat()
            view = web_services.create_view(user, "Big unpaid", ix.IndexState.from_query(QueryDict(
                "status=past_due&fp=amount&fo=gt&fv=50&sort=-next_payment_date")).to_saved())
            first = client.get("/subscriptions/?sort=next_payment_date").content.decode()
            nxt = re.search(r'href="(\?[^"]*after=[^"]*)" rel="next"', first).group(1).replace("&amp;", "&")
            pages = [
                ("All", "/subscriptions/"),
                ("Unpaid", "/subscriptions/?tab=unpaid"),
                ("Scheduled", "/subscriptions/?tab=scheduled"),
                ("Status = paused", "/subscriptions/?status=paused"),
                ("Next invoice date, one week", f"/subscriptions/?npd_from={week[0]}&npd_to={week[1]}"),
                ("Sorted by next payment date", "/subscriptions/?sort=next_payment_date"),
                ("  … its page 2 (cursor)", "/subscriptions/" + nxt),
                ("Advanced: amount > 50", "/subscriptions/?fp=amount&fo=gt&fv=50"),
                ("Saved view (unpaid, amount, sort)", f"/subscriptions/?view={view.pk}"),
                # not an indexed property of the subscription: sorted through the contact's name (a join)
                ("Sorted by contact name (join)", "/subscriptions/?sort=contact"),
            ]

            def get(path):
                r = client.get(path)
                assert r.status_code == 200, (path, r.status_code)
                assert r.content.count(b'class="name"') == ix.PAGE or args.n < ix.PAGE * 20, path

            def baseline():
                with connection.cursor() as cur:
                    cur.execute("SELECT * FROM subscriptions_subscription ORDER BY id DESC LIMIT 50")
                    cur.fetchall()

            base_ms = timed(baseline, args.runs * 3)
            results = [(label, timed(lambda p=path: get(p), args.runs)) for label, path in pages]
            count_text = re.search(r'data-testid="count">([^<]+)<', client.get("/subscriptions/").content.decode())
    finally:
        drop_database(args.db, url)
    print(f"index_page db={args.db} n={args.n:,} extra_indexes={args.extra_indexes} (set-up {setup:.1f}s); "
          f"title count of All: {count_text.group(1) if count_text else '?'}")
    print(f"  baseline: {base_ms:8.2f} ms  SELECT * … ORDER BY id DESC LIMIT 50 (plain SQL)")
    all_ms = results[0][1]
    for label, ms in results:
        print(f"  {label:36s} {ms:8.1f} ms   ×{ms / base_ms:7.1f} baseline   ×{ms / all_ms:5.2f} All")
    return 0


if __name__ == "__main__":
    sys.exit(main())
