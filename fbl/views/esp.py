"""ESP tracking webhooks at `/api/v1/events/esp/<esp>/tracking/`, through django-anymail.

Only the ESPs named in ESP_WEBHOOKS answer; any other name is a 404, so an ESP that is not set
up (Mailgun without its signing key, Amazon SES without boto3) is never half reachable. Anymail
checks the ESP's own signature where it has one and turns the payload into its normalised
events; `fbl.esp_events` turns those into relay events, acted on like a relay's.

Who posts decides how far the events reach (fbl/provenance.py): an API key with the
`reports:write` scope, given as the basic-auth password of the webhook URL
(`https://hook:KEY@host/...`, the way every ESP can authenticate a webhook) or as a Bearer
header, binds them to the key's tenant; the operator's shared ANYMAIL_WEBHOOK_SECRET
(`user:password`) is an operator-level source.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
from collections import Counter
from dataclasses import replace

from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from compliance import audit, services
from compliance.middleware import client_ip
from compliance.scopes import Scope
from fbl import esp_events
from fbl import services as fbl_services
from fbl.provenance import OPERATOR, Provenance

log = logging.getLogger(__name__)


@functools.cache
def tracking_views() -> dict[str, type]:
    """Every ESP anymail can take tracking webhooks from: URL name → its view class."""
    from anymail import urls

    found = {}
    for pattern in urls.urlpatterns:
        route = str(pattern.pattern)
        if route.endswith("/tracking/"):
            found[route.split("/", 1)[0]] = pattern.callback.view_class
    return found


def configured_view(esp: str) -> type | None:
    if esp not in settings.ESP_WEBHOOKS:
        return None
    return tracking_views().get(esp)


def instantiate(view_class: type):
    """Anymail's view for one request. Who may post is decided here (`provenance_of`), so its
    own shared-secret check is switched off; the ESP's signature checks stay. Raises
    ImproperlyConfigured or AnymailError when the ESP is not set up."""
    view = view_class(webhook_secret="checked-by-the-service")
    view.basic_auth = []
    return view


class Unauthorised(Exception):
    pass


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
            raise Unauthorised("malformed basic-auth credentials") from None
    raise Unauthorised("credentials are required: an API key or the webhook secret")


def provenance_of(request) -> Provenance:
    """Who posts this webhook. Raises Unauthorised."""
    scheme, secret = _credentials(request)
    if scheme == "basic":
        shared = settings.ANYMAIL_WEBHOOK_SECRET
        if shared and constant_time_compare(secret, shared):
            return OPERATOR
        secret = secret.partition(":")[2]
    api_key = services.authenticate_api_key(secret) if secret else None
    if api_key is None:
        raise Unauthorised("unknown or revoked API key")
    if not api_key.has_scope(Scope.REPORTS_WRITE):
        raise Unauthorised(f"this API key lacks the scope {Scope.REPORTS_WRITE}")
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


def _error(status: int, detail: str, code: str) -> JsonResponse:
    response = JsonResponse({"detail": detail, "code": code}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="esp-webhooks"'
    return response


@method_decorator(csrf_exempt, name="dispatch")
class EspTrackingWebhookView(View):
    http_method_names = ["post", "head", "options"]

    def head(self, request, esp: str):
        # Some ESPs check a webhook URL with a HEAD when it is set up.
        if configured_view(esp) is None:
            return _error(404, f"no webhook for ESP {esp!r} here", "not_found")
        return HttpResponse()

    def post(self, request, esp: str):
        view_class = configured_view(esp)
        if view_class is None:
            known = ", ".join(settings.ESP_WEBHOOKS) or "none"
            return _error(404, f"no webhook for ESP {esp!r} here; set up: {known}", "not_found")
        try:
            provenance = provenance_of(request)
        except Unauthorised as exc:
            return _error(401, str(exc), "authentication_failed")
        try:
            anymail_view = instantiate(view_class)
        except (ImproperlyConfigured, AnymailError) as exc:  # the system check says so at start
            log.error("the %s webhook is not set up: %s", esp, exc)
            return _error(503, f"the {esp} webhook is not set up", "not_configured")
        try:
            anymail_view.run_validators(request)
        except AnymailWebhookValidationFailure as exc:
            return _error(400, str(exc), "invalid_signature")
        try:
            events = anymail_view.parse_events(request)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:  # the ESP's payload is malformed, whatever anymail tripped on
            log.info("malformed %s webhook: %s", esp, exc)
            return _error(400, f"the body is not a {esp} tracking webhook", "invalid")
        outcomes: Counter[str] = Counter()
        for event in events:
            relay = esp_events.relay_event(event, anymail_view.esp_name)
            if relay is None:
                outcomes["ignored"] += 1
                continue
            relay = _bound(relay, provenance)
            if relay is None:
                outcomes["other_tenant"] += 1
                continue
            outcomes[fbl_services.record_relay_event(relay, provenance=provenance)] += 1
        return JsonResponse({"received": len(events), "outcomes": dict(outcomes)})


def _bound(relay, provenance: Provenance):
    """The event tagged with the key's tenant; None when its metadata names another tenant
    (answered 200 all the same: the ESP would otherwise post it again and again)."""
    if provenance.tenant is None:
        return relay
    slug = provenance.tenant.slug
    if relay.context.tenant and relay.context.tenant != slug:
        return None
    return replace(relay, context=replace(relay.context, tenant=slug))
