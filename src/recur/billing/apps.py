from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "recur.billing"
    label = "billing"
    verbose_name = "Billing"
