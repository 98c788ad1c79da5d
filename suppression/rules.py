"""Which suppressions block which mail: the blocking rule, written once.

Pure Python (no Django) so it reads like the table in the README and is tested on its own.

Scopes, from widest to narrowest:

| scope        | blocks transactional streams           | blocks commercial streams         |
| ------------ | -------------------------------------- | --------------------------------- |
| `global`     | only for "never mail" reasons (below)  | yes, every reason                 |
| `commercial` | no                                     | yes, every commercial stream      |
| `stream`     | no                                     | that stream                       |
| `topic`      | no                                     | that topic of its stream          |

An entry belongs to one tenant or is shared by all tenants (`tenant_id` None); a check for a
tenant's stream sees that tenant's entries and the shared ones.
"""

from __future__ import annotations

from dataclasses import dataclass

GLOBAL = "global"
COMMERCIAL = "commercial"
STREAM = "stream"
TOPIC = "topic"
SCOPES = (GLOBAL, COMMERCIAL, STREAM, TOPIC)

HARD_BOUNCE = "hard_bounce"
INVALID = "invalid"
COMPLAINT = "complaint"
UNSUBSCRIBE = "unsubscribe"
OBJECTION = "objection"
ERASURE = "erasure"
MANUAL = "manual"
LEGAL = "legal"
SOFT_BOUNCE = "soft_bounce"

# "Never mail this address": the only entries that stop transactional mail. A marketing opt-out
# must never stop a password reset (CAN-SPAM exempts transactional mail, 15 U.S.C. 7702(17)).
NEVER_MAIL = frozenset({HARD_BOUNCE, INVALID, ERASURE, LEGAL})

# Lifting these needs a separate permission: they record a recipient's or a regulator's will
# (GDPR Art. 17 and 21(3), a provider complaint), not a delivery fact.
PROTECTED = frozenset({COMPLAINT, ERASURE, OBJECTION, LEGAL})

# Reasons that are opt-outs: each writes an opt-out request whose deadline is tracked.
OPT_OUTS = frozenset({UNSUBSCRIBE, COMPLAINT, OBJECTION})

# When one key gets a second reason, the row keeps the weightier one (the history keeps both).
# "Never mail" reasons come first: what blocks transactional mail must survive a later
# complaint or unsubscribe. Protection from lifting is judged on every reason in force
# (`PROTECTED`), not only on the row's.
PRECEDENCE = (
    LEGAL,
    ERASURE,
    HARD_BOUNCE,
    INVALID,
    OBJECTION,
    COMPLAINT,
    UNSUBSCRIBE,
    MANUAL,
    SOFT_BOUNCE,
)

# Where an entry goes when its source names no scope.
DEFAULT_SCOPE = {
    HARD_BOUNCE: GLOBAL,
    INVALID: GLOBAL,
    ERASURE: GLOBAL,
    LEGAL: GLOBAL,
    SOFT_BOUNCE: GLOBAL,
    COMPLAINT: COMMERCIAL,
    UNSUBSCRIBE: COMMERCIAL,
    OBJECTION: COMMERCIAL,
    MANUAL: COMMERCIAL,
}


def weightier(a: str, b: str) -> str:
    """The reason of the two that ranks first in PRECEDENCE."""
    return a if PRECEDENCE.index(a) <= PRECEDENCE.index(b) else b


def scope_key(tenant_id: int | None, scope: str, target_id: int | None = None) -> str:
    """The indexed text that one (tenant, scope, stream or topic) is stored and looked up by."""
    owner = "*" if tenant_id is None else str(tenant_id)
    if scope in (GLOBAL, COMMERCIAL):
        return f"{owner}:{scope}"
    if scope in (STREAM, TOPIC):
        if target_id is None:
            raise ValueError(f"a {scope} scope needs its {scope}")
        return f"{owner}:{scope}:{target_id}"
    raise ValueError(f"unknown scope {scope!r}")


@dataclass(frozen=True)
class BlockingKeys:
    """Scope keys that block a send: `any_reason` for every reason, `never_mail_only` for
    NEVER_MAIL reasons only."""

    any_reason: tuple[str, ...]
    never_mail_only: tuple[str, ...]


def blocking_keys(
    *, tenant_id: int, stream_id: int, commercial: bool, topic_id: int | None = None
) -> BlockingKeys:
    """The scope keys whose active entries block mail of this stream (and topic)."""
    globals_ = (scope_key(None, GLOBAL), scope_key(tenant_id, GLOBAL))
    if not commercial:
        return BlockingKeys(any_reason=(), never_mail_only=globals_)
    keys = [
        *globals_,
        scope_key(None, COMMERCIAL),
        scope_key(tenant_id, COMMERCIAL),
        scope_key(tenant_id, STREAM, stream_id),
    ]
    if topic_id is not None:
        keys.append(scope_key(tenant_id, TOPIC, topic_id))
    return BlockingKeys(any_reason=tuple(keys), never_mail_only=())


def blocks(keys: BlockingKeys, entry_scope_key: str, reason: str) -> bool:
    if entry_scope_key in keys.any_reason:
        return True
    return entry_scope_key in keys.never_mail_only and reason in NEVER_MAIL


def widest(entries: list[tuple[str, str]]) -> tuple[str, str]:
    """Of several blocking (scope_key, reason) pairs, the one to report: the widest scope first,
    then the weightier reason."""
    if len(entries) == 1:
        return entries[0]
    return min(entries, key=lambda e: (_SCOPE_ORDER[e[0].split(":")[1]], _RANK[e[1]]))


_SCOPE_ORDER = {scope: i for i, scope in enumerate(SCOPES)}
_RANK = {reason: i for i, reason in enumerate(PRECEDENCE)}
