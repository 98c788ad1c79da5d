from django.apps import AppConfig


class DomainsConfig(AppConfig):
    name = "compliance.domains"
    label = "domains"
    verbose_name = "Domain health"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from compliance import audit
        from compliance.domains import system_checks  # noqa: F401  (registers the checks)
        from compliance.domains.models import SendingDomain

        # Which domains are watched, with which selectors, is configuration staff change;
        # the results of the checks are their own history, not audited.
        audit.track(SendingDomain)
