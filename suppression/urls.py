from django.urls import path

from suppression import views

urlpatterns = [
    path("suppressions/", views.SuppressionListView.as_view(), name="suppression-list"),
    path("suppressions/check", views.CheckView.as_view(), name="suppression-check"),
    path("suppressions/changes", views.ChangesView.as_view(), name="suppression-changes"),
    path("suppressions/import", views.ImportView.as_view(), name="suppression-import"),
    path(
        "suppressions/imports/<int:pk>",
        views.ImportJobView.as_view(),
        name="suppression-import-job",
    ),
    path("suppressions/export", views.ExportView.as_view(), name="suppression-export"),
    path(
        "suppressions/<int:pk>/", views.SuppressionDetailView.as_view(), name="suppression-detail"
    ),
]
