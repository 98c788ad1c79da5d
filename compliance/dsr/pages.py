"""`/dsr/<token>`: the requester shows control of the address. GET shows the request and a
button and changes nothing (mail scanners open links); POST verifies. No cookie, no CSRF token:
the unguessable token in the URL is the credential."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from compliance.csp import recipient_page_policy
from compliance.dsr import services
from compliance.dsr.models import DataSubjectRequest

ALLOWED = "GET, HEAD, POST"


@csrf_exempt
@never_cache
@recipient_page_policy
def verify(request, token: str):
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405, headers={"Allow": ALLOWED})
    if request.method == "POST":
        state, found = services.verify_by_link(token)
    else:
        found = services.find_by_token(token)
        if found is None:
            state = "unknown"
        elif found.status != DataSubjectRequest.Status.AWAITING_VERIFICATION:
            state = "already"
        elif found.verification_expires_at <= services._now():
            state = "expired"
        else:
            state = "pending"
    code = {"unknown": 404, "expired": 410}.get(state, 200)
    return render(request, "dsr/verify.html", {"state": state, "dsr": found}, status=code)
