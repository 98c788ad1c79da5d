"""`Authorization: Bearer <key>` for relays and applications."""

from dataclasses import dataclass

from rest_framework import authentication, exceptions

from compliance import audit, services
from compliance.middleware import client_ip
from compliance.models import ApiKey


@dataclass(frozen=True)
class ApiClient:
    """The `request.user` of an API call: the key's holder, never a Django user."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_staff: bool = False
    is_superuser: bool = False

    def __str__(self) -> str:
        return f"api-key:{self.api_key.name}"


def key_from_header(request) -> ApiKey | None:
    """The API key a plain Django request presents: None when it presents none. Raises DRF's
    AuthenticationFailed for a malformed header or an unknown or revoked key."""
    header = authentication.get_authorization_header(request).decode("latin-1")
    if not header:
        return None
    keyword, _, key = header.partition(" ")
    if keyword.lower() != BearerKeyAuthentication.keyword.lower() or not key.strip():
        raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <key>'")
    api_key = services.authenticate_api_key(key.strip())
    if api_key is None:
        raise exceptions.AuthenticationFailed("unknown or revoked API key")
    request.audit_label = f"api-key:{api_key.name}"
    return api_key


class BearerKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        api_key = key_from_header(request._request)
        if api_key is None:
            return None
        client = ApiClient(api_key=api_key)
        # The actor lives for the rest of this request's thread; the next request sets its own.
        audit.set_actor(
            audit.Actor(
                label=str(client),
                via="api",
                api_key_id=api_key.pk,
                remote_addr=client_ip(request._request),
            )
        )
        return client, api_key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'
