"""System checks of the unsubscribe settings (ids listed in compliance/checks.py): a link that
could not be read, or that would expire too soon, stops the service at start, never a one-click
at first use."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.checks import Error, register

from compliance.checks import _NEW_SECRET, _production, _secret_problem
from unsubscribe.tokens import MIN_MAX_AGE_SECONDS, parse_keys


@register
def check_unsubscribe_token_keys(app_configs=None, **kwargs) -> list[Error]:
    hint = "Write UNSUBSCRIBE_TOKEN_KEYS as ID:SECRET[,ID:SECRET...] with ids from 0 to 255."
    try:
        keys, _ = parse_keys(settings.UNSUBSCRIBE_TOKEN_KEYS)
    except ValueError as exc:
        return [
            Error(f"UNSUBSCRIBE_TOKEN_KEYS is malformed: {exc}", hint=hint, id="compliance.E003")
        ]
    if not _production():
        return []
    for kid, secret in keys.items():
        problem = _secret_problem(f"UNSUBSCRIBE_TOKEN_KEYS (key {kid})", secret, min_length=32)
        if problem:
            hint = f"Give key {kid} a random secret, e.g. {_NEW_SECRET.format(n=32)}"
            return [Error(problem, hint=hint, id="compliance.E003")]
    return []


@register
def check_unsubscribe_token_max_age(app_configs=None, **kwargs) -> list[Error]:
    # CAN-SPAM (15 U.S.C. 7704(a)(3)): an opt-out link keeps working for at least 30 days;
    # unsubscribe/tokens.py refuses a shorter age, which would fail every one-click at first use.
    days = settings.UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS
    minimum = MIN_MAX_AGE_SECONDS // 86400
    if days == 0 or days >= minimum:
        return []
    return [
        Error(
            f"UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS is {days}: unsubscribe links must keep working for "
            f"at least {minimum} days",
            hint=f"Set UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS to 0 (never expire) or {minimum} or more.",
            id="compliance.E004",
        )
    ]


# A domain name of letters, digits and hyphens, in at least two labels (RFC 1035 section 2.3.1).
_DOMAIN = re.compile(r"(?i)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+")


@register
def check_mailto_domain(app_configs=None, **kwargs) -> list[Error]:
    domain = settings.UNSUBSCRIBE_MAILTO_DOMAIN
    if not domain or _DOMAIN.fullmatch(domain):
        return []
    return [
        Error(
            f"UNSUBSCRIBE_MAILTO_DOMAIN is not a domain name: {domain!r}",
            hint="Set UNSUBSCRIBE_MAILTO_DOMAIN to the domain only (no user, no @), or leave it "
            "empty for links without a mailto.",
            id="compliance.E015",
        )
    ]
