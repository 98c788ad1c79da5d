"""The proof pages under /admin/ (before the admin site's own URLs, which would take them), with
the admin's content security policy: its style sheets, and forms that post to us."""

from django.contrib import admin
from django.urls import path

from compliance.csp import admin_page_policy
from compliance.dsr import proof_admin

urlpatterns = [
    path("proof/", admin_page_policy(admin.site.admin_view(proof_admin.page)), name="proof"),
    path("proof/csv", admin.site.admin_view(proof_admin.download_csv), name="proof-csv"),
    path("proof/pdf", admin.site.admin_view(proof_admin.download_pdf), name="proof-pdf"),
]
