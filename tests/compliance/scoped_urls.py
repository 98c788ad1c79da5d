"""A tiny API used only to exercise authentication and scope checks."""

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.key_permissions import KeyPermission
from compliance.permissions import PermissionRequired


class Probe(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {
        "GET": KeyPermission.SUPPRESSION_READ,
        "POST": KeyPermission.SUPPRESSION_WRITE,
    }

    def get(self, request):
        return Response({"key": request.auth.name})

    def post(self, request):
        return Response({"key": request.auth.name})


class Undeclared(APIView):
    def get(self, request):
        return Response({})


urlpatterns = [
    path("probe", Probe.as_view()),
    path("undeclared", Undeclared.as_view()),
    path("", include("compliance.urls")),
]
