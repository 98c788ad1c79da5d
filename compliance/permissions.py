"""Scope checks for API keys: no key or a bad key is 401, a key without the scope 403."""

from rest_framework import permissions

from compliance.models import ApiKey


class DenyWithoutScope(permissions.BasePermission):
    """Default for every API view: a view must name the scopes it needs to be reachable."""

    message = "this endpoint declares no scope"

    def has_permission(self, request, view):
        return False


def _key(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


class ScopeRequired(permissions.BasePermission):
    """Grants access when the key holds the scope the view names for this HTTP method.

    Views set `required_scopes = {"GET": Scope.X, "POST": Scope.Y}`; a method missing there is
    refused.
    """

    def has_permission(self, request, view):
        key = _key(request)
        if key is None:
            return False  # DRF answers 401 because the request is unauthenticated.
        scope = getattr(view, "required_scopes", {}).get(request.method)
        if scope is None and request.method in ("HEAD", "OPTIONS"):
            scope = getattr(view, "required_scopes", {}).get("GET")
        if scope is None:
            self.message = f"{request.method} is not allowed for API keys here"
            return False
        if not key.has_scope(scope):
            self.message = f"this API key lacks the scope {scope}"
            return False
        return True
