"""Service-level endpoints that belong to no app: health."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found

from compliance import health


@never_cache
@require_GET
def healthz(request):
    """200 while the database answers (the broker's state is reported), 503 when it does not."""
    report = health.check()
    return JsonResponse(report.as_dict(), status=200 if report.database_ok else 503)


def not_found(request, exception):
    """404 for a URL no route matches: the API's JSON error under /api/, Django's page elsewhere
    (the recipient pages keep their HTML)."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "no such endpoint or object", "code": "not_found"}, status=404
        )
    return page_not_found(request, exception)
