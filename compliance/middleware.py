"""Request-scoped concerns: the access log line, the audit actor of a staff session and the
Content Security Policy of each page."""

import ipaddress
import logging
import time

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings

from compliance import audit, csp

request_log = logging.getLogger("compliance.request")


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the
    outermost of them appended to X-Forwarded-For (addresses further left are the client's own
    claims and could be anything)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= proxies:
            found = hops[-proxies]
            try:
                return str(ipaddress.ip_address(found))
            except ValueError:
                return None
    return request.META.get("REMOTE_ADDR") or None


class RequestLogMiddleware:
    """One log line per request: method, path, status, duration and who asked."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        began = time.monotonic()
        response = self.get_response(request)
        duration_ms = round((time.monotonic() - began) * 1000, 1)
        who = getattr(request, "audit_label", "-")
        request_log.info(
            "%s %s %s %.1fms %s",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            who,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "actor": who,
                "remote_addr": client_ip(request),
            },
        )
        return response


class AuditActorMiddleware:
    """Set the audit actor for one request: the staff user, or an anonymous web visitor.

    The API's authentication replaces it with the key inside the request; resetting here keeps
    one request's actor from leaking into the next one served by the same thread.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            request.audit_label = user.get_username()
            actor = audit.Actor(
                label=user.get_username(),
                via="admin",
                user_id=user.pk,
                remote_addr=client_ip(request),
            )
        else:
            actor = audit.Actor(label="anonymous", via="web", remote_addr=client_ip(request))
        token = audit.set_actor(actor)
        try:
            return self.get_response(request)
        finally:
            audit.reset_actor(token)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the admin's own policy on every page of the admin site.

    The admin's views are Django's, so they cannot be decorated one by one; every URL resolved
    in the "admin" namespace (login, change lists, our custom admin pages, its 404s) gets
    csp.ADMIN. A view's own policy (django-csp's decorators) still wins.
    """

    def get_policy_parts(self, request, response, report_only=False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        match = getattr(request, "resolver_match", None)
        if not report_only and parts.config is None and match and "admin" in match.app_names:
            parts.config = csp.ADMIN
        return parts
