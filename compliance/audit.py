"""The audit trail: who created, changed or deleted what, through which door.

Written by model signals rather than by each service so that the Django admin's own saves are
recorded as well; the actor comes from a context variable that the admin middleware, the API
authentication and management commands set.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import decimal
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save


@dataclass(frozen=True)
class Actor:
    label: str
    via: str  # admin, api, command or system
    user_id: int | None = None
    api_key_id: int | None = None
    remote_addr: str | None = None


SYSTEM = Actor(label="system", via="system")
_current: contextvars.ContextVar[Actor] = contextvars.ContextVar("audit_actor", default=SYSTEM)


def current_actor() -> Actor:
    return _current.get()


def set_actor(actor: Actor) -> contextvars.Token:
    return _current.set(actor)


def reset_actor(token: contextvars.Token) -> None:
    _current.reset(token)


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def _jsonable(value):
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


def _snapshot(instance: models.Model, redact: frozenset[str]) -> dict:
    values = {}
    for field in instance._meta.concrete_fields:
        value = field.value_from_object(instance)
        values[field.attname] = "[redacted]" if field.name in redact else _jsonable(value)
    return values


def _record(instance: models.Model, action: str, changes: dict) -> None:
    from compliance.models import AuditEvent

    actor = current_actor()
    AuditEvent.objects.create(
        **AuditEvent.actor_fields(actor),
        remote_addr=actor.remote_addr,
        action=action,
        model=instance._meta.label_lower,
        object_pk=str(instance.pk),
        object_repr=str(instance)[:300],
        changes=changes,
    )


def track(model: type[models.Model], *, redact: Iterable[str] = ()) -> None:
    """Record every create, update and delete of `model` in the audit trail."""
    hidden = frozenset(redact)
    uid = f"audit-{model._meta.label_lower}"

    def before_save(sender, instance, raw=False, **kwargs):
        instance._audit_before = None
        if raw or instance.pk is None:
            return
        previous = sender._default_manager.filter(pk=instance.pk).first()
        if previous is not None:
            instance._audit_before = _snapshot(previous, hidden)

    def after_save(sender, instance, created, raw=False, **kwargs):
        if raw:
            return
        after = _snapshot(instance, hidden)
        before = getattr(instance, "_audit_before", None)
        if created or before is None:
            _record(instance, "create", {k: [None, v] for k, v in after.items()})
            return
        changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
        if changes:
            _record(instance, "update", changes)

    def after_delete(sender, instance, **kwargs):
        _record(instance, "delete", {k: [v, None] for k, v in _snapshot(instance, hidden).items()})

    pre_save.connect(before_save, sender=model, weak=False, dispatch_uid=uid)
    post_save.connect(after_save, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(after_delete, sender=model, weak=False, dispatch_uid=uid)


def record_access(what: str, *, subject_hash: bytes, request=None) -> None:
    """Record that someone saw personal data about `subject_hash` (an export, a download): who,
    from where, and what they saw. `request` (an HttpRequest) supplies the client address when
    the actor carries none."""
    from compliance.middleware import client_ip
    from compliance.models import AuditEvent

    actor = current_actor()
    remote_addr = actor.remote_addr or (client_ip(request) if request is not None else None)
    AuditEvent.objects.create(
        **AuditEvent.actor_fields(actor),
        remote_addr=remote_addr,
        action=AuditEvent.Action.VIEW,
        model="personal data",
        object_pk=bytes(subject_hash).hex()[:64],
        object_repr=what[:300],
        changes={},
    )
