"""System checks of the inbound report settings: the service refuses to start misconfigured."""

from __future__ import annotations

from anymail.exceptions import AnymailError
from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def check_esp_webhooks(app_configs=None, **kwargs) -> list[Error]:
    """Every ESP in ESP_WEBHOOKS is one anymail knows and is set up (its signing key, its
    library): a webhook that would fail on every post is refused at start instead."""
    from fbl.views.esp import instantiate, tracking_views

    known = tracking_views()
    errors = []
    for esp in settings.ESP_WEBHOOKS:
        if esp not in known:
            errors.append(
                Error(
                    f"ESP_WEBHOOKS names {esp!r}, which is not an ESP anymail takes tracking "
                    "webhooks from",
                    hint=f"Use some of: {', '.join(sorted(known))}.",
                    id="fbl.E001",
                )
            )
            continue
        try:
            instantiate(known[esp])
        except (ImproperlyConfigured, AnymailError) as exc:
            errors.append(
                Error(
                    f"ESP_WEBHOOKS names {esp!r}, but its webhook is not set up: {exc}",
                    hint="Set its anymail setting as ANYMAIL_<SETTING> (for example "
                    "ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY), install what it needs, or remove it "
                    "from ESP_WEBHOOKS.",
                    id="fbl.E002",
                )
            )
    if settings.REPORT_UNTIED_RECIPIENT_LIMIT < 0:
        errors.append(Error("REPORT_UNTIED_RECIPIENT_LIMIT must be 0 or more", id="fbl.E003"))
    return errors
