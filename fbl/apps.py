from django.apps import AppConfig


class FblConfig(AppConfig):
    name = "fbl"
    verbose_name = "Complaint and bounce reports"

    def ready(self) -> None:
        from fbl import checks  # noqa: F401  (registers the ESP webhook checks)
        from fbl.services import erasure  # noqa: F401  (registers its erasure steps)
