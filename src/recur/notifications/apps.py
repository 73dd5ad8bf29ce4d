from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "recur.notifications"
    label = "notifications"
    verbose_name = "Notifications"
