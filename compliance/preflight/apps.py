from django.apps import AppConfig


class PreflightConfig(AppConfig):
    name = "compliance.preflight"
    label = "preflight"
    verbose_name = "Pre-send message check"
