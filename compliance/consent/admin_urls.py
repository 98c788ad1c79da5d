"""The consent pages under /admin/ (before the admin site's own URLs, which would take them)."""

from django.contrib import admin
from django.urls import path

from compliance.consent import admin_import

urlpatterns = [
    path("consent/import/", admin.site.admin_view(admin_import.upload), name="consent-import"),
]
