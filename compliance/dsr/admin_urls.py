"""The proof pages under /admin/ (before the admin site's own URLs, which would take them)."""

from django.contrib import admin
from django.urls import path

from compliance.dsr import proof_admin

urlpatterns = [
    path("proof/", admin.site.admin_view(proof_admin.page), name="proof"),
    path("proof/csv", admin.site.admin_view(proof_admin.download_csv), name="proof-csv"),
    path("proof/pdf", admin.site.admin_view(proof_admin.download_pdf), name="proof-pdf"),
]
