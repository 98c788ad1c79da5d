from django.apps import AppConfig


class FblConfig(AppConfig):
    name = "fbl"
    verbose_name = "Complaint and bounce reports"
