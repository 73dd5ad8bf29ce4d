from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "recur.crm"
    label = "crm"
    verbose_name = "CRM"
