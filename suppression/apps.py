from django.apps import AppConfig


class SuppressionConfig(AppConfig):
    name = "suppression"
    verbose_name = "Suppression list"

    def ready(self) -> None:
        from suppression import checks  # noqa: F401  (registers the settings checks)
        from suppression.services import erasure  # noqa: F401  (registers its erasure steps)
