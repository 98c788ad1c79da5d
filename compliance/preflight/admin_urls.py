"""The pre-send check page under /admin/ (before the admin site's own URLs, which would take it)."""

from django.contrib import admin
from django.urls import path

from compliance.csp import admin_page_policy
from compliance.preflight import admin_page

urlpatterns = [
    path(
        "preflight/",
        admin_page_policy(admin.site.admin_view(admin_page.page)),
        name="preflight",
    ),
]
