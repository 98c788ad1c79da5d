"""ESP tracking webhooks at `/api/v1/events/esp/<esp>/tracking/`, through django-anymail
(fbl/sources/anymail.py reads them; this view only answers).

A plain Django view, not DRF's: the ESP authenticates the webhook its own way (the "webhook"
authentication of fbl/sources/base.py) and anymail reads the request as the ESP sent it.
"""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from compliance.errors import ServiceError
from fbl import sources

SOURCE = sources.get("anymail")


def _error(exc: ServiceError) -> JsonResponse:
    response = JsonResponse({"detail": exc.message, "code": exc.code}, status=exc.status)
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="esp-webhooks"'
    return response


@method_decorator(csrf_exempt, name="dispatch")
class EspTrackingWebhookView(View):
    http_method_names = ["post", "head", "options"]

    def head(self, request, esp: str):
        # Some ESPs check a webhook URL with a HEAD when it is set up.
        try:
            SOURCE.view_class(esp)
        except ServiceError as exc:
            return _error(exc)
        return HttpResponse()

    def post(self, request, esp: str):
        try:
            SOURCE.view_class(esp)  # an ESP that is not set up is a 404 before anything else
            taken = SOURCE.take(request, provenance=SOURCE.provenance(request), esp=esp)
        except ServiceError as exc:
            return _error(exc)
        return JsonResponse(SOURCE.answer(taken))
