"""What every report source shares: its name, how its poster is authenticated, how far what it
says may reach, and the loop that acts on its events.

A source turns what an endpoint received into reports or events in the one shape the rest of
`fbl` acts on: a raw message for `fbl.services.process`, or `fbl.events.SourceEvent`s for
`fbl.services.record_relay_event`. A new source is one module in this package that subclasses
`Source` (or `EventSource`) and registers an instance with `register`; `fbl.sources` imports
every module of the package, so nothing else names it. How far a source's events reach is
decided where every source's is, `fbl.provenance.Provenance.bind`; the source only says what an
event naming another tenant gets (`other_tenant`).
"""

from __future__ import annotations

import base64
import binascii
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from django.conf import settings
from django.db import transaction
from django.utils.crypto import constant_time_compare

from compliance import audit, services
from compliance.errors import ServiceError
from compliance.key_permissions import KeyPermission
from compliance.middleware import client_ip
from fbl import services as fbl_services
from fbl.events import SourceEvent
from fbl.provenance import OPERATOR, OtherTenant, Provenance

__all__ = [
    "REGISTRY",
    "Authentication",
    "EventSource",
    "OtherTenant",
    "Reading",
    "Source",
    "Taken",
    "register",
]

# How a source's poster proves who it is:
# api_key: the `Authorization: Bearer KEY` DRF checked (compliance.authentication), with the
#          view's `reports:write` permission;
# webhook: what an ESP can send: a key as the basic-auth password of the webhook URL or as a
#          Bearer header, or the operator's shared ANYMAIL_WEBHOOK_SECRET (`user:password`).
Authentication = Literal["api_key", "webhook"]

REGISTRY: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Make `source` known under its name; a second source of the same name is a mistake."""
    known = REGISTRY.get(source.name)
    if known is not None and type(known) is not type(source):
        raise ValueError(f"two sources are named {source.name!r}")
    REGISTRY[source.name] = source
    return source


class Source(ABC):
    """One way reports come in."""

    name: ClassVar[str]
    authentication: ClassVar[Authentication] = "api_key"

    def provenance(self, request) -> Provenance:
        """Who posted this request. Raises ServiceError (401) for missing or bad credentials."""
        if self.authentication == "webhook":
            return _webhook_provenance(request)
        # DRF's authentication and the view's PermissionRequired have checked the key already.
        return Provenance.of_api_key(request.auth)

    @abstractmethod
    def take(self, body: Any, *, provenance: Provenance, **details: Any) -> Any:
        """Read `body` (what the endpoint received) and act on it within `provenance`'s reach.
        Raises ServiceError for input that cannot be taken in."""


@dataclass
class Reading:
    """The events one request body holds."""

    events: list[SourceEvent]
    received: int  # records or events in the body
    ignored: int = 0  # of those, the ones that are no event acted on (their type)


@dataclass
class Taken:
    """What acting on one request did."""

    reading: Reading
    outcomes: Counter[str] = field(default_factory=Counter)


class EventSource(Source):
    """A source of events (deliveries, bounces, complaints) rather than of report mail."""

    other_tenant: ClassVar[OtherTenant] = "refuse"

    @abstractmethod
    def read(self, body: Any, **details: Any) -> Reading:
        """The events in `body`. Raises ServiceError (4xx) for a body that is malformed."""

    def take(self, body: Any, *, provenance: Provenance, **details: Any) -> Taken:
        """Every event bound to the poster's tenant first (a refusal stores nothing), then
        stored and acted on in one transaction."""
        reading = self.read(body, **details)
        bound = [provenance.bind(event, other_tenant=self.other_tenant) for event in reading.events]
        taken = Taken(reading)
        with transaction.atomic():
            for event in bound:
                if event is None:
                    taken.outcomes["other_tenant"] += 1
                    continue
                taken.outcomes[fbl_services.record_relay_event(event, provenance=provenance)] += 1
        return taken


# --- webhook authentication ------------------------------------------------------------------


def _unauthorised(detail: str) -> ServiceError:
    return ServiceError(detail, code="authentication_failed", status=401)


def _credentials(request) -> tuple[str, str]:
    """(scheme, secret) of the Authorization header: a Bearer key, or a basic-auth pair."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return "bearer", value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            return "basic", base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorised("malformed basic-auth credentials") from None
    raise _unauthorised("credentials are required: an API key or the webhook secret")


def _webhook_provenance(request) -> Provenance:
    scheme, secret = _credentials(request)
    if scheme == "basic":
        shared = settings.ANYMAIL_WEBHOOK_SECRET
        if shared and constant_time_compare(secret, shared):
            return OPERATOR
        secret = secret.partition(":")[2]
    api_key = services.authenticate_api_key(secret) if secret else None
    if api_key is None:
        raise _unauthorised("unknown or revoked API key")
    if not api_key.allows(KeyPermission.REPORTS_WRITE):
        raise _unauthorised(f"this API key lacks the permission {KeyPermission.REPORTS_WRITE}")
    request.audit_label = f"api-key:{api_key.name}"
    audit.set_actor(
        audit.Actor(
            label=f"api-key:{api_key.name}",
            via="api",
            api_key_id=api_key.pk,
            remote_addr=client_ip(request),
        )
    )
    return Provenance.of_api_key(api_key)
