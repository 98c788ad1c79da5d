from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "compliance.webhooks"
    label = "webhooks"
    verbose_name = "Downstream webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Opt-outs, suppressions and withdrawals become events for the downstream endpoints;
        # the erasure steps take addresses out of stored events.
        from compliance import audit, propagation
        from compliance.webhooks import erasure, receivers, selectors  # noqa: F401
        from compliance.webhooks.models import DownstreamEndpoint

        propagation.register(selectors.waits_for_downstream)
        audit.track(DownstreamEndpoint, redact=("secret",))
