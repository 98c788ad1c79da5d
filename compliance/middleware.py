"""Request-scoped concerns: the access log line and the audit actor of a staff session."""

import logging
import time

from compliance import audit

request_log = logging.getLogger("compliance.request")


def client_ip(request) -> str | None:
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
