from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        from compliance import audit, schema  # noqa: F401  (registers the OpenAPI scheme)
        from compliance.models import ApiKey, SendingIdentity, Stream, Tenant, Topic

        # Staff and API changes to these models are recorded whoever makes them (admin, API,
        # command), so the trail cannot be bypassed by a code path that forgets to write it.
        audit.track(Tenant)
        audit.track(Stream)
        audit.track(Topic)
        audit.track(ApiKey, redact=("key_hash",))
        audit.track(SendingIdentity)
