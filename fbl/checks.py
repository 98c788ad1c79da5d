"""System checks of the inbound report settings: the service refuses to start misconfigured."""

from __future__ import annotations

import re

from anymail.exceptions import AnymailError
from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from fbl import dkim
from fbl.recipients import RecoveryHooks


@register()
def check_esp_webhooks(app_configs=None, **kwargs) -> list[Error]:
    """Every ESP in ESP_WEBHOOKS is one anymail knows and is set up (its signing key, its
    library): a webhook that would fail on every post is refused at start instead."""
    from fbl.sources.anymail import instantiate, tracking_views

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
    return errors


@register
def check_verp_prefix(app_configs=None, **kwargs) -> list[Error]:
    try:
        RecoveryHooks(verp_prefix=settings.FBL_VERP_PREFIX or None).verp_pattern()
    except re.error as exc:
        return [
            Error(
                f"FBL_VERP_PREFIX is not a regular expression: {exc}",
                hint="Set FBL_VERP_PREFIX to a regex of the local-part prefix, e.g. bounces?",
                id="compliance.E011",
            )
        ]
    return []


@register
def check_dkim_nameservers(app_configs=None, **kwargs) -> list[Error]:
    nameservers = settings.DKIM_NAMESERVERS
    if not nameservers:
        return []  # the system resolver
    try:
        dkim.resolver_for(nameservers, timeout=1.0)
    except ValueError as exc:
        return [
            Error(
                f"DKIM_NAMESERVERS cannot be used: {exc}",
                hint="List DNS servers as IP, IP:PORT or [IPv6]:PORT, comma-separated.",
                id="compliance.E012",
            )
        ]
    return []


# RFC 5322 section 3.6.8: a field name is printable US-ASCII except the colon.
_FIELD_NAME = re.compile(r"[!-9;-~]+")


@register
def check_trace_header(app_configs=None, **kwargs) -> list[Error]:
    if _FIELD_NAME.fullmatch(settings.FBL_TRACE_HEADER):
        return []
    return [
        Error(
            f"FBL_TRACE_HEADER is not a header field name: {settings.FBL_TRACE_HEADER!r}",
            hint="Set FBL_TRACE_HEADER to the header your relays add, e.g. X-Compliance-Trace.",
            id="compliance.E014",
        )
    ]
