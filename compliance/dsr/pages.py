"""`/dsr/<token>`: the requester shows control of the address. GET shows the request and a
button and changes nothing (mail scanners open links); POST verifies. No cookie, no CSRF token:
the unguessable token in the URL is the credential.

`/dsr/<token>/export`: the access export, by the second link mailed once the request is
carried out, while that link is valid: the JSON, or with `?format=csv` a ZIP of CSV files."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from compliance import audit
from compliance.csp import recipient_page_policy
from compliance.dsr import access, downloads, services
from compliance.dsr.models import DataSubjectRequest, RequestStep
from compliance.middleware import client_ip

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


@never_cache
@recipient_page_policy
def export(request, token: str):
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    state, found = access.find_by_export_token(token)
    if state != "ready":
        code = {"expired": 410}.get(state, 404)
        return render(request, "dsr/export.html", {"state": state}, status=code)
    requester = audit.Actor(
        label=f"requester of data-subject request #{found.pk}",
        via="web",
        remote_addr=client_ip(request),
    )
    with audit.acting_as(requester):
        services.add_step(found, RequestStep.Step.EXPORTED, "by the mailed link")
        if request.GET.get("format") == "csv":
            return downloads.zip_file(found, http_request=request, via="requester's link")
        return downloads.json_file(found, http_request=request, via="requester's link")
