"""The account's settings live in core.AccountSettings now (core 0002 copied the row first)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0001_initial'),
        ('core', '0002_account_settings'),
    ]

    operations = [
        migrations.DeleteModel(
            name='AccountSettings',
        ),
    ]
