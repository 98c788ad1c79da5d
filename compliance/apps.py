from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        # checks: registers the settings' system checks; schema: the OpenAPI scheme.
        from compliance import audit, checks, schema  # noqa: F401
        from compliance.models import ApiKey, SendingIdentity, Stream, Tenant, Topic

        # Staff and API changes to these models are recorded whoever makes them (admin, API,
        # command), so the trail cannot be bypassed by a code path that forgets to write it.
        audit.track(Tenant)
        audit.track(Stream)
        audit.track(Topic)
        audit.track(ApiKey, redact=("key_hash",))
        audit.track(SendingIdentity)
