from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "compliance.consent"
    label = "consent"
    verbose_name = "Consent"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every opt-out the suppression list records is also a withdrawal here.
        from compliance.consent import erasure, receivers  # noqa: F401  (erasure: its steps)
