"""The account's settings move from notifications.AccountSettings (e-mail settings only) to
core.AccountSettings, which also holds the billing settings that used to come only from the environment.

The existing row is copied with its e-mail settings; its new billing fields take the environment's values
of the moment (RECUR_TIME_ZONE, RECUR_DUNNING_*), so an existing installation keeps behaving as before.
notifications 0002 drops the old table after this copy.
"""

import django.db.models.deletion
import recur.core.models
from django.conf import settings
from django.db import migrations, models


EMAIL_FIELDS = ("reminder_enabled", "reminder_days", "sender_name", "sender_email", "buyer_emails_enabled")


def copy_forward(apps, schema_editor):
    old = apps.get_model("notifications", "AccountSettings").objects.filter(pk=1).first()
    if old is not None:
        new = apps.get_model("core", "AccountSettings")(pk=1, **{f: getattr(old, f) for f in EMAIL_FIELDS})
        new.save()


def copy_back(apps, schema_editor):
    new = apps.get_model("core", "AccountSettings").objects.filter(pk=1).first()
    if new is not None:
        apps.get_model("notifications", "AccountSettings").objects.update_or_create(
            pk=1, defaults={f: getattr(new, f) for f in EMAIL_FIELDS})


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
        ('notifications', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='AccountSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('time_zone', models.CharField(default=recur.core.models.default_time_zone, max_length=64, verbose_name='time zone')),
                ('dunning_retry_days', models.JSONField(default=recur.core.models.default_retry_days, verbose_name='retry schedule')),
                ('dunning_final_action', models.CharField(choices=[('stay_past_due', 'Leave it unpaid (past due)'), ('cancel', 'Cancel the subscription')], default=recur.core.models.default_final_action, max_length=20, verbose_name='after the last retry')),
                ('default_payment_methods', models.JSONField(default=recur.core.models.default_payment_methods, verbose_name='accepted payment methods')),
                ('associate_billing_contacts', models.BooleanField(default=True, verbose_name='associate billing contacts')),
                ('reminder_enabled', models.BooleanField(default=False, verbose_name='send payment reminders')),
                ('reminder_days', models.PositiveSmallIntegerField(default=14, verbose_name='days before the payment')),
                ('sender_name', models.CharField(blank=True, max_length=200, verbose_name='sender name')),
                ('sender_email', models.EmailField(blank=True, max_length=254, verbose_name='sender e-mail')),
                ('buyer_emails_enabled', models.JSONField(default=recur.core.models.all_buyer_email_kinds)),
                ('updated_at', models.DateTimeField(blank=True, null=True, verbose_name='last changed')),
                ('updated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'account settings',
                'verbose_name_plural': 'account settings',
            },
        ),
        migrations.RunPython(copy_forward, copy_back),
    ]
