from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "recur.web"
    label = "web"
    verbose_name = "Web"
