"""Reads of the unsubscribe app: what the preference centre shows a recipient."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from suppression import addresses, rules
from suppression.scopes import Target
from unsubscribe.links import Recipient


@dataclass(frozen=True)
class Choice:
    """One line of the preference centre."""

    key: str  # "stream", "commercial" or "topic:<slug>"
    label: str
    description: str
    receiving: bool
    locked: bool  # blocked by an entry the recipient cannot lift here (complaint, bounce, ...)


def blocking_entry(recipient: Recipient, target: Target):
    from suppression.models import Suppression, active_q

    digest = addresses.address_hash(recipient.claims.recipient, settings.ADDRESS_HASH_KEY.encode())
    return Suppression.objects.filter(active_q(), address_hash=digest, scope_key=target.key).first()


def _liftable(entry) -> bool:
    return entry is None or entry.reason in (rules.UNSUBSCRIBE, rules.MANUAL)


def preference_choices(recipient: Recipient) -> list[Choice]:
    """The stream, each active topic and "all commercial mail", each with whether the recipient
    receives it (no entry of its own scope) and whether they may change it here."""
    lines = [
        (
            "stream",
            recipient.stream.name,
            "",
            Target(recipient.tenant, rules.STREAM, recipient.stream),
        )
    ]
    for topic in recipient.stream.topics.filter(is_active=True):
        lines.append(
            (
                f"topic:{topic.slug}",
                topic.name,
                topic.description,
                Target(recipient.tenant, rules.TOPIC, recipient.stream, topic),
            )
        )
    lines.append(("commercial", recipient.tenant.name, "", recipient.all_commercial))
    choices = []
    for key, label, description, target in lines:
        entry = blocking_entry(recipient, target)
        choices.append(
            Choice(
                key=key,
                label=label,
                description=description,
                receiving=entry is None,
                locked=not _liftable(entry),
            )
        )
    return choices


def stopped_for_another_reason(recipient: Recipient) -> bool:
    """Is this stream's mail stopped by an entry the preference centre cannot change (a
    complaint, a bounce, an erasure, a legal hold, or one shared by all tenants)?"""
    from suppression import selectors

    verdict = selectors.is_suppressed(stream=recipient.stream, address=recipient.claims.recipient)
    if not verdict.suppressed:
        return False
    return verdict.scope == rules.GLOBAL or verdict.reason not in (rules.UNSUBSCRIBE, rules.MANUAL)
