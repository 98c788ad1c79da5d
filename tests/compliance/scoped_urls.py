"""A tiny API used only to exercise authentication and scope checks."""

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.permissions import ScopeRequired
from compliance.scopes import Scope


class Probe(APIView):
    permission_classes = [ScopeRequired]
    required_scopes = {"GET": Scope.SUPPRESSION_READ, "POST": Scope.SUPPRESSION_WRITE}

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
