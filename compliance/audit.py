"""The audit trail: who created, changed or deleted what, who logged in, and who looked at whose
personal data, through which door.

Written by model and auth signals rather than by each service so that the Django admin's own saves
(staff users, groups, their permissions) are recorded as well; the actor comes from a context
variable that the admin middleware, the API authentication and management commands set. Reads of
personal data are recorded by `record_access`, which every such read calls.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime
import decimal
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.contrib.auth import signals as auth_signals
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save


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


def _write(
    *, action: str, model: str, object_pk: str, object_repr: str, changes: dict, actor=None
) -> None:
    from compliance.models import AuditEvent

    actor = actor or current_actor()
    AuditEvent.objects.create(
        **AuditEvent.actor_fields(actor),
        remote_addr=actor.remote_addr,
        action=action,
        model=model,
        object_pk=object_pk,
        object_repr=object_repr[:300],
        changes=changes,
    )


def _record(instance: models.Model, action: str, changes: dict) -> None:
    _write(
        action=action,
        model=instance._meta.label_lower,
        object_pk=str(instance.pk),
        object_repr=str(instance),
        changes=changes,
    )


def track(
    model: type[models.Model], *, redact: Iterable[str] = (), ignore: Iterable[str] = ()
) -> None:
    """Record every create, update and delete of `model` in the audit trail. A `redact`ed field's
    value is never written, only that it changed; an `ignore`d field is left out (a user's
    `last_login`: the login itself is recorded)."""
    hidden = frozenset(redact)
    skipped = frozenset(ignore)
    uid = f"audit-{model._meta.label_lower}"

    def snapshot(instance) -> dict:
        values = _snapshot(instance, hidden)
        return {k: v for k, v in values.items() if k not in skipped}

    def secrets(instance) -> dict:
        return {name: getattr(instance, name) for name in hidden}

    def before_save(sender, instance, raw=False, **kwargs):
        instance._audit_before = None
        if raw or instance.pk is None:
            return
        previous = sender._default_manager.filter(pk=instance.pk).first()
        if previous is not None:
            instance._audit_before = (snapshot(previous), secrets(previous))

    def after_save(sender, instance, created, raw=False, **kwargs):
        if raw:
            return
        after = snapshot(instance)
        before = getattr(instance, "_audit_before", None)
        instance._audit_before = None
        if created or before is None:
            _record(instance, "create", {k: [None, v] for k, v in after.items()})
            return
        values, kept = before
        changes = {k: [values.get(k), v] for k, v in after.items() if values.get(k) != v}
        for name, value in secrets(instance).items():
            if kept.get(name) != value:
                changes[name] = ["[redacted]", "[changed]"]
        if changes:
            _record(instance, "update", changes)

    def after_delete(sender, instance, **kwargs):
        _record(instance, "delete", {k: [v, None] for k, v in snapshot(instance).items()})

    pre_save.connect(before_save, sender=model, weak=False, dispatch_uid=uid)
    post_save.connect(after_save, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(after_delete, sender=model, weak=False, dispatch_uid=uid)


def track_memberships(relation, *, field: str) -> None:
    """Record what is added to and removed from a many-to-many `relation` (a user's groups and
    permissions, a group's permissions), from either side: `user.groups.add(g)` and
    `g.user_set.add(user)` are both recorded, on the object they were called on."""
    model = relation.field.model

    def changed(sender, instance, action, reverse, model: type[models.Model], pk_set, **kwargs):
        if action == "pre_clear":
            if reverse:
                related = model._default_manager.filter(**{field: instance})
            else:
                related = getattr(instance, field).all()
            names = sorted(str(obj) for obj in related)
            verb = "remove"
        elif action in ("post_add", "post_remove") and pk_set:
            names = sorted(str(obj) for obj in model._default_manager.filter(pk__in=pk_set))
            verb = action.removeprefix("post_")
        else:
            return
        if not names:
            return
        side = model._meta.verbose_name_plural if reverse else field
        _record(instance, verb, {str(side): names})

    m2m_changed.connect(
        changed,
        sender=relation.through,
        weak=False,
        dispatch_uid=f"audit-{model._meta.label_lower}-{field}",
    )


def _request_actor(request, user=None) -> Actor:
    from compliance.middleware import client_ip

    remote_addr = client_ip(request) if request is not None else current_actor().remote_addr
    if user is None:
        return Actor(label="anonymous", via="web", remote_addr=remote_addr)
    return Actor(label=user.get_username(), via="admin", user_id=user.pk, remote_addr=remote_addr)


def _user_event(action: str, request, user) -> None:
    _write(
        action=action,
        model=user._meta.label_lower,
        object_pk=str(user.pk),
        object_repr=user.get_username(),
        changes={},
        actor=_request_actor(request, user),
    )


def _logged_in(sender, request, user, **kwargs):
    _user_event("login", request, user)


def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        _user_event("logout", request, user)


def _login_failed(sender, credentials, request=None, **kwargs):
    # Only the name that was tried: Django masks the password in `credentials`, and it is not
    # kept even masked.
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    username = str(credentials.get(user_model.USERNAME_FIELD) or credentials.get("username") or "")
    _write(
        action="login_failed",
        model=user_model._meta.label_lower,
        object_pk="",
        object_repr=username,
        changes={"username": username},
        actor=_request_actor(request),
    )


def track_logins() -> None:
    """Record every login, logout and failed login, with the client's address."""
    auth_signals.user_logged_in.connect(_logged_in, dispatch_uid="audit-login")
    auth_signals.user_logged_out.connect(_logged_out, dispatch_uid="audit-logout")
    auth_signals.user_login_failed.connect(_login_failed, dispatch_uid="audit-login-failed")


# What a read of personal data was, for `record_access`.
PROOF_PAGE = "proof_page"
PROOF_CSV = "proof_csv"
PROOF_PDF = "proof_pdf"
PROOF_API = "proof_api"
ACCESS_EXPORT = "access_export"
ERASURE = "erasure"


def record_access(
    what: str,
    address_hash: bytes,
    *,
    tenant=None,
    detail: dict | None = None,
    request=None,
) -> None:
    """Record that the current actor viewed, exported or erased the personal data of the address
    with `address_hash` (`what`: PROOF_PAGE, PROOF_CSV, PROOF_PDF, PROOF_API, ACCESS_EXPORT,
    ERASURE). Only the keyed hash is written, so the row outlives an erasure without naming the
    address again. `tenant`: the tenant the read was limited to (None: every tenant). `request`
    (an HttpRequest) gives the client's address when the actor carries none (a requester's
    download link)."""
    digest = bytes(address_hash).hex()
    actor = current_actor()
    if actor.remote_addr is None and request is not None:
        from compliance.middleware import client_ip

        actor = dataclasses.replace(actor, remote_addr=client_ip(request))
    _write(
        actor=actor,
        action="access",
        model="personal_data",
        object_pk=digest,
        object_repr=f"{what} of address {digest[:12]}",
        changes={"what": what, "tenant": tenant.slug if tenant is not None else None}
        | (detail or {}),
    )
