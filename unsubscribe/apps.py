from django.apps import AppConfig


class UnsubscribeConfig(AppConfig):
    name = "unsubscribe"
    verbose_name = "Unsubscribe"
