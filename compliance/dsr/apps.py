from django.apps import AppConfig


class DsrConfig(AppConfig):
    name = "compliance.dsr"
    label = "dsr"
    verbose_name = "Data-subject requests"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from compliance.dsr import erasure  # noqa: F401  (registers its own erasure steps)
