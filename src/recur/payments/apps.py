from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "recur.payments"
    label = "payments"
    verbose_name = "Payments"
