from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "recur.core"
    label = "core"
    verbose_name = "Core"
