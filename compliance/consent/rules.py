"""What a consent record is made of and what it must carry: the ledger's vocabulary, the evidence
each method requires, purposes as people write them, and the current state from a sequence of
events.

Pure Python (no Django): the tables here are the README's, and are tested on their own.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

GRANTED: Final = "granted"
WITHDRAWN: Final = "withdrawn"
# The API's verbs for the two ledger actions.
ACTION_FOR_VERB: Final = {"grant": GRANTED, "withdraw": WITHDRAWN}

# Lawful bases for direct marketing by e-mail (GDPR Art. 6(1), ePrivacy Directive Art. 13).
CONSENT: Final = "consent"
SOFT_OPT_IN: Final = "soft_opt_in"  # ePrivacy Art. 13(2): an existing customer, similar products
CONTRACT: Final = "contract"
LEGITIMATE_INTEREST: Final = "legitimate_interest"
BASES: Final = (CONSENT, SOFT_OPT_IN, CONTRACT, LEGITIMATE_INTEREST)

WEB_FORM: Final = "web_form"
DOUBLE_OPT_IN: Final = "double_opt_in"
IMPORT: Final = "import"
API: Final = "api"
PREFERENCE_CENTRE: Final = "preference_centre"
STAFF: Final = "staff"
UNSUBSCRIBE: Final = "unsubscribe"
COMPLAINT: Final = "complaint"
METHODS: Final = (
    WEB_FORM,
    DOUBLE_OPT_IN,
    IMPORT,
    API,
    PREFERENCE_CENTRE,
    STAFF,
    UNSUBSCRIBE,
    COMPLAINT,
)

EVIDENCE_FIELDS: Final = (
    "collected_at",
    "ip",
    "user_agent",
    "page_url",
    "form_id",
    "wording",
    "privacy_notice_version",
)


@dataclass(frozen=True)
class Requirement:
    """The evidence a record made by one method must carry, for a grant and for a withdrawal."""

    grant: frozenset[str] | None  # None: this method never grants
    withdraw: frozenset[str]


def _needs(*fields: str) -> frozenset[str]:
    return frozenset(fields)


# Which evidence each method requires (GDPR Art. 7(1): who, when, how, to what, what they were
# shown). A withdrawal needs only its time: Art. 7(3) makes withdrawing as easy as giving, and
# the service supplies the rest for the paths it runs itself (unsubscribe, complaint).
REQUIRED_EVIDENCE: Final[dict[str, Requirement]] = {
    WEB_FORM: Requirement(_needs("collected_at", "ip", "page_url", "wording"), _needs()),
    # The sign-up's own evidence; the confirmation's time and IP are added when it is clicked.
    DOUBLE_OPT_IN: Requirement(_needs("ip", "page_url", "wording"), _needs()),
    IMPORT: Requirement(_needs("collected_at", "wording"), _needs("collected_at")),
    API: Requirement(_needs("collected_at", "wording"), _needs()),
    PREFERENCE_CENTRE: Requirement(_needs("ip", "user_agent", "wording"), _needs()),
    STAFF: Requirement(_needs("collected_at", "wording"), _needs()),
    UNSUBSCRIBE: Requirement(None, _needs()),
    COMPLAINT: Requirement(None, _needs()),
}


class ConsentInputError(ValueError):
    """A record the rules refuse; `field` names what is wrong."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def missing_evidence(method: str, action: str, evidence: dict[str, object]) -> list[str]:
    """The required evidence fields that are absent or empty, sorted."""
    requirement = REQUIRED_EVIDENCE[method]
    needed = requirement.grant if action == GRANTED else requirement.withdraw
    if needed is None:
        raise ConsentInputError(f"method {method!r} only withdraws consent", field="method")
    return sorted(f for f in needed if evidence.get(f) in (None, ""))


def check_vocabulary(*, action: str, basis: str, method: str) -> None:
    """Raise ConsentInputError naming an unknown action (API verb), basis or method."""
    if action not in ACTION_FOR_VERB:
        raise ConsentInputError(f"unknown action {action!r}: use grant or withdraw", field="action")
    if basis not in BASES:
        raise ConsentInputError(
            f"unknown basis {basis!r}: use one of {', '.join(BASES)}", field="basis"
        )
    if method not in METHODS:
        raise ConsentInputError(
            f"unknown method {method!r}: use one of {', '.join(METHODS)}", field="method"
        )


@dataclass(frozen=True)
class Purpose:
    """What a consent is for: one stream of a tenant, or one topic of it."""

    stream: str
    topic: str | None = None

    @classmethod
    def parse(cls, text: str) -> Purpose:
        """`STREAM` or `STREAM/TOPIC`, by slug."""
        stream, _, topic = (text or "").strip().partition("/")
        if not stream or "/" in topic or (_ and not topic):
            raise ConsentInputError(
                f"purpose {text!r} is not STREAM or STREAM/TOPIC", field="purpose"
            )
        return cls(stream, topic or None)

    def __str__(self) -> str:
        return f"{self.stream}/{self.topic}" if self.topic else self.stream

    def covers(self, other: Purpose) -> bool:
        """A stream-wide record also speaks for each topic of that stream."""
        return self.stream == other.stream and (self.topic is None or self.topic == other.topic)


@dataclass(frozen=True)
class Event:
    """One ledger row as the state computation needs it."""

    purpose: Purpose
    action: str
    basis: str
    occurred_at: datetime.datetime
    sequence: int = 0  # the ledger's own order, for two events at the same instant


@dataclass(frozen=True)
class State:
    purpose: Purpose
    action: str  # GRANTED or WITHDRAWN
    basis: str
    since: datetime.datetime


def latest(events: Iterable[Event]) -> Event | None:
    """The event that decides: the one that happened last (the ledger's order breaks ties)."""
    return max(events, key=lambda e: (e.occurred_at, e.sequence), default=None)


def state_of(purpose: Purpose, events: Iterable[Event]) -> State | None:
    """The state of one purpose: the latest event about it or about its whole stream."""
    decisive = latest(e for e in events if e.purpose.covers(purpose))
    if decisive is None:
        return None
    return State(purpose, decisive.action, decisive.basis, decisive.occurred_at)


def states(events: Iterable[Event]) -> list[State]:
    """The state of every purpose the events name, sorted by purpose."""
    events = list(events)
    purposes = sorted({e.purpose for e in events}, key=str)
    return [s for p in purposes if (s := state_of(p, events)) is not None]
