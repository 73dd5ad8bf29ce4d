from django.apps import AppConfig


class CheckoutConfig(AppConfig):
    name = "recur.checkout"
    label = "checkout"
    verbose_name = "Checkout"
