"""The consent pages under /admin/ (before the admin site's own URLs, which would take them), with
the admin's content security policy: its style sheets, and forms that post to us."""

from django.contrib import admin
from django.urls import path

from compliance.consent import admin_import
from compliance.csp import admin_page_policy

urlpatterns = [
    path(
        "consent/import/",
        admin_page_policy(admin.site.admin_view(admin_import.upload)),
        name="consent-import",
    ),
]
