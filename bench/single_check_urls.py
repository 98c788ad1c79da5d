"""The service's URLs plus `GET /bench/bare-check?address=A`: one indexed lookup and an answer.

It is the baseline of bench/single_check.py (DESIGN.md: "a bare Django view doing one indexed
lookup under the same gunicorn"): the address lower-cased and keyed-hashed, one query on the
suppression table by its hash index, a JSON answer; no key, no stream, no rule.
"""

import hmac

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.urls import include, path


def bare_check(request):
    address = request.GET.get("address", "")
    digest = hmac.digest(
        settings.ADDRESS_HASH_KEY.encode(), address.strip().lower().encode(), "sha256"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reason FROM suppression_suppression WHERE address_hash = %s LIMIT 1",
            [digest],
        )
        row = cursor.fetchone()
    return JsonResponse({"address": address, "suppressed": row is not None})


urlpatterns = [
    path("bench/bare-check", bare_check),
    path("", include("compliance.urls")),
]
