"""Turning a scope as people write it (`global`, `commercial`, `stream:S`, `topic:S/T`) into the
target an entry is stored under, and back."""

from __future__ import annotations

from dataclasses import dataclass

from compliance.errors import ServiceError
from compliance.models import Stream, Tenant, Topic
from compliance.selectors import stream_of, topic_of
from suppression import rules


@dataclass(frozen=True)
class Target:
    """Where an entry applies: a tenant (None: shared by all) and one scope within it."""

    tenant: Tenant | None
    scope: str
    stream: Stream | None = None
    topic: Topic | None = None

    @property
    def key(self) -> str:
        target = self.topic or self.stream
        return rules.scope_key(
            self.tenant.pk if self.tenant else None, self.scope, target.pk if target else None
        )

    @property
    def label(self) -> str:
        if self.scope == rules.STREAM:
            return f"stream:{self.stream.slug}"
        if self.scope == rules.TOPIC:
            return f"topic:{self.topic.stream.slug}/{self.topic.slug}"
        return self.scope


def parse_scope(tenant: Tenant | None, text: str | None, *, reason: str) -> Target:
    """Resolve `text` for `tenant`; an empty scope takes the reason's default (rules.DEFAULT_SCOPE).

    Raises ServiceError for an unknown scope, stream or topic, or a stream scope without tenant.
    """
    text = (text or "").strip() or rules.DEFAULT_SCOPE[reason]
    kind, _, rest = text.partition(":")
    if kind in (rules.GLOBAL, rules.COMMERCIAL) and not rest:
        return Target(tenant=tenant, scope=kind)
    if kind not in (rules.STREAM, rules.TOPIC) or not rest:
        raise ServiceError(
            f"unknown scope {text!r}: use global, commercial, stream:SLUG or topic:STREAM/SLUG",
            code="unknown_scope",
        )
    if tenant is None:
        raise ServiceError("a stream or topic scope belongs to one tenant", code="scope_tenant")
    if kind == rules.STREAM:
        return Target(tenant=tenant, scope=kind, stream=stream_of(tenant, rest))
    stream_slug, _, topic_slug = rest.partition("/")
    stream = stream_of(tenant, stream_slug)
    topic = topic_of(stream, topic_slug)
    if topic is None:
        raise ServiceError(f"scope {text!r} names no topic", code="unknown_scope")
    return Target(tenant=tenant, scope=kind, stream=stream, topic=topic)


def label_for_key(key: str, *, stream: Stream, topic: Topic | None) -> str:
    """The label of a blocking key found by a check of `stream` (and `topic`)."""
    kind = key.split(":")[1]
    if kind == rules.STREAM:
        return f"stream:{stream.slug}"
    if kind == rules.TOPIC and topic is not None:
        return f"topic:{stream.slug}/{topic.slug}"
    return kind
