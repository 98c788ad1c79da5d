from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from compliance import views
from compliance.csp import api_docs_policy

# A URL under /api/ that matches no route (/api/v1/suppressions/-1/) answers the API's error.
handler404 = views.not_found

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        api_docs_policy(SpectacularSwaggerView.as_view(url_name="schema")),
        name="api-docs",
    ),
    path("api/v1/", include("suppression.urls")),
    path("api/v1/", include("unsubscribe.api_urls")),
    path("api/v1/", include("fbl.api_urls")),
    path("api/v1/", include("compliance.consent.api_urls")),
    path("api/v1/", include("compliance.dsr.api_urls")),
    path("api/v1/", include("compliance.preflight.api_urls")),
    path("admin/", include("compliance.consent.admin_urls")),
    path("admin/", include("compliance.dsr.admin_urls")),
    path("admin/", include("compliance.preflight.admin_urls")),
    path("admin/", include("compliance.dashboard.admin_urls")),
    path("admin/", admin.site.urls),
    path("", include("compliance.consent.urls")),
    path("", include("compliance.dsr.urls")),
    path("", include("unsubscribe.urls")),
]
