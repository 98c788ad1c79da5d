"""The service's URLs plus `POST /bench/bare/<token>`: one durable INSERT and a 200, nothing else.

It is the baseline of bench/one_click.py: the least a durable opt-out endpoint can do in Django.
"""

from django.db import connection, transaction
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare_insert(request, token):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_bare_insert (token, body) VALUES (%s, %s)",
            [token, request.POST.get("List-Unsubscribe", "")],
        )
    return HttpResponse("ok")


urlpatterns = [
    path("bench/bare/<str:token>", bare_insert),
    path("", include("compliance.urls")),
]
