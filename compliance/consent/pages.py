"""`/confirm/<token>`: the double opt-in page. GET shows what is being confirmed and a button and
changes nothing (mail scanners fetch links); POST confirms. No cookie, no CSRF token: the
unguessable token in the URL is the only credential, as on the unsubscribe pages."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from compliance.consent import double_opt_in
from compliance.csp import recipient_page_policy
from compliance.middleware import client_ip

ALLOWED = "GET, HEAD, POST"


@csrf_exempt
@never_cache
@recipient_page_policy
def confirm(request, token: str):
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405, headers={"Allow": ALLOWED})
    if request.method == "POST":
        found = double_opt_in.confirm(
            token, ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")
        )
    else:
        found = double_opt_in.look_up(token)
    status = {"unknown": 404, "expired": 410}.get(found.state, 200)
    return render(
        request,
        "consent/confirm.html",
        {"state": found.state, "pending": found.pending, "purpose": found.purpose_name},
        status=status,
    )
