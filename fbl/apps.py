from django.apps import AppConfig


class FblConfig(AppConfig):
    name = "fbl"
    verbose_name = "Complaint and bounce reports"

    def ready(self) -> None:
        from anymail.signals import tracking

        from fbl import esp_events

        # ESP tracking webhooks (django-anymail) become relay events.
        tracking.connect(esp_events.on_tracking, dispatch_uid="fbl.esp_events.on_tracking")
