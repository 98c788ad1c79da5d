from django.urls import path

from compliance.dsr import api

urlpatterns = [
    path("data-subject-requests", api.RequestsView.as_view(), name="dsr-list"),
    path("data-subject-requests/<int:pk>", api.RequestView.as_view(), name="dsr-detail"),
    path("data-subject-requests/<int:pk>/export", api.ExportView.as_view(), name="dsr-export"),
    path("proof", api.ProofView.as_view(), name="proof-api"),
]
