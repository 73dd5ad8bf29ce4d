from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "recur.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from recur.core import account  # noqa: F401  (connects the settings cache to request_started)
