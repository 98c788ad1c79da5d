"""What a report means for each of its recipients: the action table, as data.

- ARF `abuse`, `fraud`: a complaint, counted in the complaint rate; suppressed for the tenant's
  commercial mail (for every tenant's, when the report cannot be attributed), with an opt-out
  request.
- ARF `opt-out` (non-standard, some loops send it): an unsubscribe, suppressed the same way.
- ARF `not-spam`, `auth-failure`, `virus` and any other type: counted only.
- DSN permanent ("user unknown / no such domain / moved"): a hard bounce, suppressed globally
  for every tenant (a dead address is dead for everyone).
- DSN transient (4.x.x, mailbox full): a soft bounce, recorded; past the threshold within the
  window a global soft-bounce entry (blocks commercial mail only) that expires.
- DSN blocked (5.7.x spam and policy blocks): a reputation signal, recorded, never a suppression.
- Auto-replies, unrecognised mail, delivered or relayed notices: nothing.

A recipient whose address is missing or redacted cannot be acted on; it is reported as such.

No Django import here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from fbl.report import ParsedReport, Recipient

__all__ = ["COMPLAINT_TYPES", "OPT_OUT_TYPES", "Action", "Verb", "actions_for"]

Verb = Literal["complaint", "unsubscribe", "feedback", "hard_bounce", "soft_bounce", "blocked"]

# RFC 5965 section 7.3 registers abuse, fraud, other, virus; RFC 6650 not-spam; RFC 6591
# auth-failure. Only the first two say "this recipient does not want this mail".
COMPLAINT_TYPES: Final = frozenset({"abuse", "fraud"})
# Some loops send unsubscribes as feedback reports of their own type.
OPT_OUT_TYPES: Final = frozenset({"opt-out", "optout", "unsubscribe"})

_BOUNCE_VERBS: Final[dict[str, Verb]] = {
    "permanent": "hard_bounce",
    "transient": "soft_bounce",
    "blocked": "blocked",
}


@dataclass(frozen=True, slots=True)
class Action:
    verb: Verb
    address: str | None  # None: missing or redacted, nothing to suppress
    recipient: Recipient | None = None

    @property
    def suppresses(self) -> bool:
        return self.address is not None and self.verb in ("complaint", "unsubscribe", "hard_bounce")


def _address(recipient: Recipient) -> str | None:
    return None if recipient.redacted else recipient.address


def actions_for(report: ParsedReport) -> list[Action]:
    """One action per recipient the report is about; an empty list when there is nothing to do."""
    if report.kind == "arf":
        feedback = (report.feedback_type or "").lower()
        if feedback in COMPLAINT_TYPES:
            verb: Verb = "complaint"
        elif feedback in OPT_OUT_TYPES:
            verb = "unsubscribe"
        else:
            verb = "feedback"
        recipients = report.recipients or (Recipient(address=None),)
        return [Action(verb, _address(r), r) for r in recipients]
    if report.kind == "dsn":
        return [
            Action(_BOUNCE_VERBS[r.category], _address(r), r)
            for r in report.recipients
            if r.category in _BOUNCE_VERBS and r.action not in ("delivered", "relayed", "expanded")
        ]
    return []
