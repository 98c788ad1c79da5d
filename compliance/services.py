"""Writes of the core domain. Views, admin actions and commands call these; nothing else saves."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compliance.errors import ServiceError
from compliance.key_permissions import ALL_PERMISSIONS
from compliance.models import ApiKey, Tenant
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
