"""/admin/ is the dashboard: the first page staff see after logging in. The admin's own index,
the list of every model, moves to /admin/models/ (the sidebar of every admin page lists them too).
"""

from csp.decorators import csp
from django.conf import settings
from django.contrib import admin
from django.template.response import TemplateResponse

from compliance import csp as policies
from compliance import deadlines
from compliance.dashboard import panels, services

# These pages are outside the admin's URL namespace, which gives the admin's policy to the rest.
admin_policy = csp(policies.ADMIN)

# Without celery beat (the embedded default) the page rolls up what is new itself, for at most
# this long.
ROLL_UP_ON_VIEW_SECONDS = 2.0


@admin_policy
def page(request):
    if settings.DASHBOARD_ROLL_UP_ON_VIEW:
        services.roll_up(max_seconds=ROLL_UP_ON_VIEW_SECONDS)
    figures = panels.dashboard(
        request.user, now=deadlines._now(), by=request.GET.get("by", "tenant")
    )
    context = {**admin.site.each_context(request), "title": "Dashboard", **figures}
    return TemplateResponse(request, "admin/dashboard/index.html", context)


@admin_policy
def model_list(request):
    return admin.site.index(request)
