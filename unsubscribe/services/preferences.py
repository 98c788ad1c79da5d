"""The preference centre's form: opting out of what the recipient no longer wants, and
resubscribing to what an unsubscribe had stopped."""

from __future__ import annotations

from django.db import transaction

from compliance.consent import services as consent
from suppression import rules
from suppression import services as suppression_services
from suppression.scopes import Target
from unsubscribe.links import Recipient
from unsubscribe.selectors import blocking_entry, preference_choices
from unsubscribe.services.optouts import Evidence, unsubscribe


def _target_for_key(recipient: Recipient, key: str) -> Target:
    if key == "stream":
        return Target(recipient.tenant, rules.STREAM, recipient.stream)
    if key == "commercial":
        return recipient.all_commercial
    slug = key.removeprefix("topic:")
    topic = recipient.stream.topics.get(slug=slug)
    return Target(recipient.tenant, rules.TOPIC, recipient.stream, topic)


def save_preferences(
    *,
    recipient: Recipient,
    receiving: set[str],
    evidence: Evidence,
    wording: str,
    opt_outs_only: bool = False,
) -> list[str]:
    """Apply the preference centre form: opt out of each choice no longer wanted, and resubscribe
    to each wanted one that an unsubscribe had stopped (recording the consent given in the
    ledger; lifting the entry retires the recipient's repeat keys, see `unsubscribe.receivers`).
    Entries the recipient cannot lift (complaint, erasure, objection, legal, bounces) stay. With
    `opt_outs_only` (a client over its budget) nothing is resubscribed. Returns the keys that
    changed."""
    changed = []
    with transaction.atomic():
        for choice in preference_choices(recipient):
            if choice.locked:
                continue
            wanted = choice.key in receiving
            if wanted == choice.receiving or (wanted and opt_outs_only):
                continue
            target = _target_for_key(recipient, choice.key)
            if not wanted:
                unsubscribe(recipient=recipient, evidence=evidence, target=target)
            else:
                entry = blocking_entry(recipient, target)
                if entry is not None:
                    suppression_services.lift(
                        suppression=entry,
                        note="the recipient resubscribed in the preference centre",
                    )
                consent.grant_in_preference_centre(
                    target=target,
                    address=recipient.claims.recipient,
                    ip=evidence.ip,
                    user_agent=evidence.user_agent,
                    wording=wording,
                )
            changed.append(choice.key)
    return changed
