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


_NEVER_MAIL_SORTED = tuple(sorted(NEVER_MAIL))


@dataclass(frozen=True)
class BlockingKeys:
    """The blocking rule for one send, as data: an active entry blocks when its scope key is in
    `any_reason`, or is in `never_mail_only` and its reason in `never_mail`.

    Every read path (the check API's single and batch queries, the Postfix policy server, the
    ORM path, the relay mirror export) applies exactly this, through `blocking_sql` or
    `suppression.models.blocking_q`."""

    any_reason: tuple[str, ...]
    never_mail_only: tuple[str, ...]
    never_mail: tuple[str, ...] = _NEVER_MAIL_SORTED

    def blocks(self, entry_scope_key: str, reason: str) -> bool:
        """Does an active entry with this scope key and reason block the send?"""
        if entry_scope_key in self.any_reason:
            return True
        return entry_scope_key in self.never_mail_only and reason in self.never_mail


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
    return keys.blocks(entry_scope_key, reason)


# --- the rule as SQL: every hand-written query builds its condition here, once, at import -------


def is_active(*, lifted_at: object, expires_at: object, now: object) -> bool:
    """An entry is in force until it is lifted or its expiry has passed (soft bounces expire)."""
    return lifted_at is None and (expires_at is None or expires_at > now)


def active_sql(*, alias: str = "", now: str) -> str:
    """`is_active` as a condition on the suppression table (`alias`, if given, qualifies the
    columns; `now` is the SQL text of the moment, a placeholder or `now()`)."""
    c = f"{alias}." if alias else ""
    return f"{c}lifted_at IS NULL AND ({c}expires_at IS NULL OR {c}expires_at > {now})"


def blocking_sql(
    *, alias: str = "", now: str, any_reason: str, never_mail_only: str, never_mail: str
) -> str:
    """`is_active` and `BlockingKeys.blocks` as one condition on the suppression table.

    The other arguments are the SQL text standing for the values (placeholders, with a cast if
    wanted): the arrays `any_reason`, `never_mail_only` and `never_mail` of a `BlockingKeys`, in
    that order in the text. The key test stays `scope_key = ANY(array)`, which PostgreSQL checks
    on the rows the (address_hash, scope_key) index finds for a hash."""
    c = f"{alias}." if alias else ""
    return (
        f"{active_sql(alias=alias, now=now)}\n"
        f"  AND ({c}scope_key = ANY({any_reason})\n"
        f"       OR ({c}scope_key = ANY({never_mail_only}) AND {c}reason = ANY({never_mail})))"
    )


def widest(entries: list[tuple[str, str]]) -> tuple[str, str]:
    """Of several blocking (scope_key, reason) pairs, the one to report: the widest scope first,
    then the weightier reason."""
    if len(entries) == 1:
        return entries[0]
    return min(entries, key=lambda e: (_SCOPE_ORDER[e[0].split(":")[1]], _RANK[e[1]]))


_SCOPE_ORDER = {scope: i for i, scope in enumerate(SCOPES)}
_RANK = {reason: i for i, reason in enumerate(PRECEDENCE)}
