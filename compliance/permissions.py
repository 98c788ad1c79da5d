"""Permission checks for API keys: no key or a bad key is 401, a key without the permission 403."""

from rest_framework import permissions

from compliance.models import ApiKey


class DenyWithoutPermission(permissions.BasePermission):
    """Default for every API view: a view must name the permissions it needs to be reachable."""

    message = "this endpoint declares no permission"

    def has_permission(self, request, view):
        return False


def _key(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


class PermissionRequired(permissions.BasePermission):
    """Grants access when the key holds the permission the view names for this HTTP method.

    Views set `required_permissions = {"GET": KeyPermission.X, "POST": KeyPermission.Y}`; a method
    missing there is refused.
    """

    def has_permission(self, request, view):
        key = _key(request)
        if key is None:
            return False  # DRF answers 401 because the request is unauthenticated.
        needed = getattr(view, "required_permissions", {}).get(request.method)
        if needed is None and request.method in ("HEAD", "OPTIONS"):
            needed = getattr(view, "required_permissions", {}).get("GET")
        if needed is None:
            self.message = f"{request.method} is not allowed for API keys here"
            return False
        if not key.allows(needed):
            self.message = f"this API key lacks the permission {needed}"
            return False
        return True
