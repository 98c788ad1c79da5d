"""Writes of the core domain. Views, admin actions and commands call these; nothing else saves."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance import roles, staff_scope
from compliance.errors import ServiceError
from compliance.key_permissions import ALL_PERMISSIONS
from compliance.models import ApiKey, StaffTenant, Tenant
from compliance.ttl_cache import TtlCache

KEY_PREFIX = "csk_"


def _now() -> datetime.datetime:
    return timezone.now()


def hash_api_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def validate_permissions(permissions: Iterable[str]) -> list[str]:
    """Return the permissions sorted and deduplicated; raise ServiceError naming any unknown one."""
    wanted = {p.strip() for p in permissions if p.strip()}
    unknown = sorted(wanted - ALL_PERMISSIONS)
    if unknown:
        raise ServiceError(
            f"unknown permission(s): {', '.join(unknown)}; "
            f"known: {', '.join(sorted(ALL_PERMISSIONS))}",
            code="unknown_permission",
        )
    if not wanted:
        raise ServiceError("at least one permission is required", code="no_permission")
    return sorted(wanted)


@transaction.atomic
def issue_api_key(
    *,
    name: str,
    permissions: Iterable[str],
    tenant: Tenant | None = None,
    operator_level: bool = False,
    created_by=None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plain text, which is never stored or shown again.
    `operator_level` marks a relay of the operator's own (fbl/provenance.py)."""
    if not name.strip():
        raise ServiceError("an API key needs a name", code="no_name")
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name.strip(),
        prefix=plain[: len(KEY_PREFIX) + 6],
        key_hash=hash_api_key(plain),
        permissions=validate_permissions(permissions),
        tenant=tenant,
        operator_level=operator_level,
        created_by=created_by,
    )
    return api_key, plain


# Relays ask once per message: the key is looked up once per process per cache period, so a
# revocation takes effect everywhere within LOOKUP_CACHE_SECONDS.
_keys_by_hash: TtlCache[ApiKey | None] = TtlCache(seconds=lambda: settings.LOOKUP_CACHE_SECONDS)


def _load_key(digest: str) -> ApiKey | None:
    return ApiKey.objects.select_related("tenant").filter(key_hash=digest).first()


def authenticate_api_key(plain: str) -> ApiKey | None:
    """The active key matching `plain`, or None. Notes its use at most once per interval."""
    digest = hash_api_key(plain)
    api_key = _keys_by_hash.get_or_load(digest, lambda: _load_key(digest))
    if api_key is None or not hmac.compare_digest(api_key.key_hash, digest):
        return None
    if api_key.revoked_at is not None:
        return None
    now = _now()
    interval = datetime.timedelta(seconds=settings.API_KEY_LAST_USED_INTERVAL)
    if api_key.last_used_at is None or now - api_key.last_used_at >= interval:
        # A plain UPDATE, not save(): usage is not an audited change and must stay cheap.
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


@transaction.atomic
def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key: every later request with it gets 401. Revoking twice changes nothing."""
    if api_key.revoked_at is None:
        api_key.revoked_at = _now()
        api_key.save(update_fields=["revoked_at"])
    _keys_by_hash.clear()  # this process at once; others within LOOKUP_CACHE_SECONDS
    return api_key


def create_staff_user(
    *, username: str, role: str, tenants: Iterable[Tenant] = (), email: str = ""
) -> tuple:
    """Create an active staff user in the group of `role` (compliance/roles.py), limited to
    `tenants` (none: every tenant), and return it with its generated password, which is never
    shown again. Raises ServiceError for an unknown role, a bad or taken user name, or a bad
    address."""
    if role not in roles.ROLES:
        raise ServiceError(
            f"unknown role {role!r}; use one of {', '.join(roles.ROLES)}", code="unknown_role"
        )
    user_model = get_user_model()
    username = username.strip()
    if not username:
        raise ServiceError("a staff user needs a name", code="no_name")
    try:
        user_model.username_validator(username)
    except ValidationError as exc:
        raise ServiceError(f"user name {username!r}: {exc.messages[0]}", code="bad_name") from None
    try:
        if email:
            validate_email(email)
    except ValidationError:
        raise ServiceError(f"{email!r} is not an e-mail address", code="bad_email") from None
    taken = ServiceError(f"a user named {username!r} already exists", code="user_exists")
    # Names differing only in case are one name to whoever reads the audit trail.
    if user_model.objects.filter(username__iexact=username).exists():
        raise taken
    password = secrets.token_urlsafe(18)
    try:
        with transaction.atomic():
            user = user_model.objects.create_user(
                username=username, email=email, password=password, is_staff=True
            )
            user.groups.add(roles.group_of(role))
            for tenant in dict.fromkeys(tenants):
                StaffTenant.objects.create(user=user, tenant=tenant)
    except IntegrityError:
        raise taken from None  # made by someone else since the check
    staff_scope.forget(user)
    return user, password
