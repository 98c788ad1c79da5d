"""The dashboard under /admin/ (before the admin site's own URLs, which would take /admin/)."""

from django.contrib import admin
from django.urls import path

from compliance.dashboard import views

urlpatterns = [
    path("", admin.site.admin_view(views.page), name="dashboard"),
    path("models/", admin.site.admin_view(views.model_list), name="admin-models"),
]
