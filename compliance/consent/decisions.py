"""May this address get this mail? The send decision, written once as a table.

Pure Python (no Django), so it reads like the README's table and is tested on its own.

| stream        | jurisdiction       | denied when                                            |
| ------------- | ------------------ | ------------------------------------------------------ |
| transactional | any                | a "never mail" entry (hard bounce, invalid, erasure,   |
|               |                    | legal)                                                 |
| commercial    | any                | suppressed; consent withdrawn                          |
| commercial    | EU/EEA (GDPR,      | no grant on the basis of consent or soft opt-in        |
|               | ePrivacy)          |                                                        |
| commercial    | UK (UK GDPR, PECR) | no grant on the basis of consent or soft opt-in        |
| commercial    | Canada (CASL)      | no express consent, nor implied consent (soft opt-in   |
|               |                    | or contract) under two years old                       |
| commercial    | US (CAN-SPAM)      | nothing more: opt-out law                              |

An erased address (an erasure entry) is denied as `erased` on every stream.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Final

from compliance.consent import rules
from compliance.jurisdictions import CASL, OPT_IN_EU, OPT_IN_UK

SUPPRESSED: Final = "suppressed"
CONSENT_WITHDRAWN: Final = "consent_withdrawn"
NO_CONSENT: Final = "no_consent"
ERASED: Final = "erased"

# Bases that stand for consent to marketing mail where the law asks for opt-in.
_OPT_IN_BASES: Final = frozenset({rules.CONSENT, rules.SOFT_OPT_IN})
# CASL s. 10(9)-(10): implied consent from an existing business relationship lasts two years.
CASL_IMPLIED_FOR: Final = datetime.timedelta(days=2 * 365)
_CASL_IMPLIED_BASES: Final = frozenset({rules.SOFT_OPT_IN, rules.CONTRACT})


@dataclass(frozen=True)
class Blocking:
    """The entry that blocks the send, as the batch check found it."""

    reason: str
    scope: str


@dataclass(frozen=True)
class Denial:
    reason: str  # SUPPRESSED, CONSENT_WITHDRAWN, NO_CONSENT or ERASED
    rule: str  # which line of the table
    blocking: Blocking | None = None


def decide(
    *,
    commercial: bool,
    regime_name: str,
    blocking: Blocking | None,
    consent: rules.State | None,
    now: datetime.datetime,
) -> Denial | None:
    """None when the mail may go; else why not. `blocking` is the entry the suppression list's
    blocking rule found for this stream (so only never-mail entries for a transactional one)."""
    if blocking is not None:
        if blocking.reason == "erasure":
            return Denial(ERASED, "erased", blocking)
        rule = "commercial_suppressed" if commercial else "transactional_never_mail"
        return Denial(SUPPRESSED, rule, blocking)
    if not commercial:
        return None
    if consent is not None and consent.action == rules.WITHDRAWN:
        return Denial(CONSENT_WITHDRAWN, "commercial_withdrawn")
    granted = consent if consent is not None and consent.action == rules.GRANTED else None
    if regime_name in (OPT_IN_EU, OPT_IN_UK):
        if granted is None or granted.basis not in _OPT_IN_BASES:
            return Denial(NO_CONSENT, regime_name)
        return None
    if regime_name == CASL:
        if granted is None:
            return Denial(NO_CONSENT, CASL)
        if granted.basis == rules.CONSENT:
            return None
        if granted.basis not in _CASL_IMPLIED_BASES:
            return Denial(NO_CONSENT, CASL)
        if now - granted.since < CASL_IMPLIED_FOR:
            return None
        return Denial(NO_CONSENT, "casl_implied_expired")
    return None
