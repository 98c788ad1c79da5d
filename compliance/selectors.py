"""Reads of the core domain that the apps share."""

from __future__ import annotations

from django.conf import settings

from compliance.errors import NotFound, PermissionDenied, ServiceError
from compliance.models import ApiKey, SendingIdentity, Stream, Tenant, Topic
from compliance.ttl_cache import TtlCache

DEFAULT_TENANT = "default"

# Tenants, streams and topics change rarely and are read on every check.
_lookups: TtlCache = TtlCache(seconds=lambda: settings.LOOKUP_CACHE_SECONDS)


def _storable(slug: str) -> bool:
    """PostgreSQL text cannot hold NUL (0x00): no stored slug has one, and the database refuses
    a query for it, so such a slug is unknown without asking."""
    return "\x00" not in slug


def tenant_for(*, api_key: ApiKey | None, slug: str | None) -> Tenant:
    """The tenant a request acts for.

    A key bound to a tenant acts only for it; an unbound key names one or gets the default.
    Raises PermissionDenied for another tenant's slug, NotFound for an unknown one.
    """
    if api_key is not None and api_key.tenant_id is not None:
        if slug and slug != api_key.tenant.slug:
            raise PermissionDenied(f"this API key is bound to tenant {api_key.tenant.slug!r}")
        return api_key.tenant
    wanted = slug or DEFAULT_TENANT
    tenant = (
        _lookups.get_or_load(("tenant", wanted), lambda: Tenant.objects.filter(slug=wanted).first())
        if _storable(wanted)
        else None
    )
    if tenant is None:
        raise NotFound(f"unknown tenant {wanted!r}")
    return tenant


def visible_tenant_ids(api_key: ApiKey | None) -> list[int] | None:
    """Tenants whose data a key may see (shared data always), or None for every tenant."""
    if api_key is None or api_key.tenant_id is None:
        return None
    return [api_key.tenant_id]


def stream_of(tenant: Tenant, slug: str | None) -> Stream:
    """The tenant's stream by slug. Raises ServiceError naming the known streams."""
    if not slug:
        raise ServiceError("a stream is required", code="stream_required")
    stream = (
        _lookups.get_or_load(
            ("stream", tenant.pk, slug),
            lambda: (
                Stream.objects.filter(tenant=tenant, slug=slug).select_related("tenant").first()
            ),
        )
        if _storable(slug)
        else None
    )
    if stream is None:
        known = ", ".join(tenant.streams.values_list("slug", flat=True)) or "none"
        raise ServiceError(
            f"unknown stream {slug!r} for tenant {tenant.slug!r}; known: {known}",
            code="unknown_stream",
        )
    return stream


def stream_by_id(stream_id: int) -> Stream | None:
    return _lookups.get_or_load(
        ("stream-id", stream_id),
        lambda: Stream.objects.select_related("tenant").filter(pk=stream_id).first(),
    )


def topic_by_id(topic_id: int) -> Topic | None:
    return _lookups.get_or_load(
        ("topic-id", topic_id), lambda: Topic.objects.filter(pk=topic_id).first()
    )


def topic_of(stream: Stream, slug: str | None) -> Topic | None:
    if not slug:
        return None
    topic = (
        _lookups.get_or_load(
            ("topic", stream.pk, slug),
            lambda: Topic.objects.filter(stream=stream, slug=slug).select_related("stream").first(),
        )
        if _storable(slug)
        else None
    )
    if topic is None:
        known = ", ".join(stream.topics.values_list("slug", flat=True)) or "none"
        raise ServiceError(
            f"unknown topic {slug!r} for stream {stream.slug!r}; known: {known}",
            code="unknown_topic",
        )
    return topic


def sender_patterns(sender: str) -> list[str]:
    """Patterns that could match an envelope sender, most specific first."""
    sender = sender.strip().lower()
    domain = sender.rpartition("@")[2]
    patterns = [sender] if "@" in sender else []
    labels = domain.split(".")
    patterns.append(domain)
    patterns += ["*." + ".".join(labels[i:]) for i in range(1, len(labels) - 1)]
    return [p for p in patterns if p]


def identity_for_sender(sender: str) -> SendingIdentity | None:
    """The sending identity of an envelope sender: exact address, then domain, then the
    nearest `*.parent` pattern. None when nothing matches."""
    patterns = sender_patterns(sender)
    if not patterns:
        return None

    def load():
        found = {
            i.pattern: i
            for i in SendingIdentity.objects.filter(pattern__in=patterns).select_related(
                "tenant", "stream__tenant"
            )
        }
        return next((found[p] for p in patterns if p in found), None)

    return _lookups.get_or_load(("identity", sender.strip().lower()), load)
