"""The pre-send message check under /api/v1/."""

from django.urls import path

from compliance.preflight import api

urlpatterns = [path("preflight", api.PreflightView.as_view(), name="preflight")]
