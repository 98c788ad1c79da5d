"""OpenAPI descriptions for our own API parts (imported when the app is ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class BearerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "compliance.authentication.BearerKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key made in the admin or by `manage.py create_api_key`.",
        }


@extend_schema_field({"type": "string", "format": "email", "maxLength": 512})
class AddressField(serializers.CharField):
    """A recipient address in a request: documented as an email address; checked (and refused
    with a 400 naming the reason) by suppression/addresses.py, not by this field."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 512)
        super().__init__(**kwargs)


# Every error answer has this one shape (compliance/api_errors.py and the check fast path in
# suppression/views.py); `errors` only on field validation failures.
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "what was wrong, for a person"},
        "code": {"type": "string", "description": "a stable machine-readable code"},
        "errors": {
            "description": "per-field messages of a request that failed validation: an object "
            "of field name to messages, or a list of such objects for a list of items",
            "oneOf": [
                {"type": "object", "additionalProperties": True},
                {"type": "array", "items": {}},
            ],
        },
    },
    "required": ["detail", "code"],
}

# The statuses any API operation may answer with an Error: bad input, no or an unknown key, a
# key without the permission or tenant, an unknown object, a body too large, an unsupported body
# type.
ERROR_RESPONSES = {
    "400": "The request is invalid (the body, a parameter or a value in it).",
    "401": "No API key, a malformed Authorization header, or an unknown or revoked key.",
    "403": "The key lacks the permission, or the tenant is not the key's own.",
    "404": "No such object, or a named tenant, stream or topic that does not exist.",
    "413": "The body or the batch is larger than this operation takes.",
    "415": "The body's Content-Type is not one this operation reads.",
}


def document_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: the Error component, and its answers on every
    operation (declared ones win, so a view can describe its own 404 more precisely)."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components["responses"] = {
        status: {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status, description in ERROR_RESPONSES.items()
    } | components.get("responses", {})
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status in ERROR_RESPONSES:
                responses.setdefault(status, {"$ref": f"#/components/responses/{status}"})
    return result
