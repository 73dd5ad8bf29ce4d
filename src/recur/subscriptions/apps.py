from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "recur.subscriptions"
    label = "subscriptions"
    verbose_name = "Subscriptions"
