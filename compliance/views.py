"""Service-level endpoints that belong to no app: health."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from compliance import health


@never_cache
@require_GET
def healthz(request):
    """200 while the database answers (the broker's state is reported), 503 when it does not."""
    report = health.check()
    return JsonResponse(report.as_dict(), status=200 if report.database_ok else 503)
