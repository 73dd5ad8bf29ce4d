"""total_paid is what was received minus what was refunded (billing.services.settle_invoice_payment and
the billing run's recorder, since this release). Before, a part of an invoice booked by hand counted
only once the invoice was paid, and a payment that arrived for an invoice paid or voided meanwhile
did not count at all, though refunding it was subtracted. Recompute it from the payments: one
statement, on SQLite and PostgreSQL alike."""

from django.db import migrations

RECOMPUTE = """
UPDATE subscriptions_subscription SET total_paid = COALESCE((
    SELECT SUM(p.amount - p.refunded_amount) FROM billing_payment p
    WHERE p.subscription_id = subscriptions_subscription.id
      AND p.status IN ('succeeded', 'partially_refunded', 'refunded')), 0)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0005_drop_redundant_indexes"),
        ("billing", "0004_leaner_indexes"),
    ]

    operations = [migrations.RunSQL(RECOMPUTE, migrations.RunSQL.noop)]
