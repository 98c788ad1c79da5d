from django.apps import AppConfig
from django.db.models.signals import post_save


class UnsubscribeConfig(AppConfig):
    name = "unsubscribe"
    verbose_name = "Unsubscribe"

    def ready(self) -> None:
        from suppression.models import SuppressionEvent
        from unsubscribe import checks  # noqa: F401  (registers the settings checks)
        from unsubscribe.receivers import retire_repeats_on_lift

        post_save.connect(
            retire_repeats_on_lift, sender=SuppressionEvent, dispatch_uid="unsubscribe-lift"
        )
