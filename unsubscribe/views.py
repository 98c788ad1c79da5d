"""The recipient's pages and the RFC 8058 one-click endpoint.

GET shows a page and never changes anything (link scanners and prefetchers fetch it); POST acts.
No page sets a cookie or needs a CSRF token: the unguessable token in the URL is the only
credential, as RFC 8058 section 3.1 requires for the one-click POST.

Page views, invalid tokens, wrong bodies and repeated opt-outs count against a per-client budget
(`unsubscribe.throttle`); over it the answer is 429. A first opt-out is never counted or refused.
"""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from compliance.csp import recipient_page_policy
from compliance.errors import ServiceError
from compliance.middleware import client_ip
from compliance.ttl_cache import TtlCache
from unsubscribe import links, selectors, services, throttle
from unsubscribe.models import UnsubscribeRequest

_done_pages: TtlCache[str] = TtlCache(seconds=lambda: settings.LOOKUP_CACHE_SECONDS)

Channel = UnsubscribeRequest.Channel
Breadth = UnsubscribeRequest.Breadth
ALLOWED = "GET, HEAD, POST, OPTIONS"


def _evidence(request, token: str, channel: str) -> services.Evidence:
    return services.Evidence(
        channel=channel,
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        token_key_id=links.codec().key_id_of(token),
    )


def _invalid(request):
    # 400, the same page for every failure: it never tells whether an address is known.
    if (wait := throttle.over_budget(request)) is not None:
        return _too_many(request, wait)
    return render(request, "unsubscribe/invalid.html", status=400)


def _too_many(request, wait: int, token: str | None = None):
    # The page of a valid link keeps an unsubscribe button: a first opt-out is never refused.
    response = render(
        request,
        "unsubscribe/too_many.html",
        {"retry_after": wait, "token": token},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


@csrf_exempt
@never_cache
@recipient_page_policy
def unsubscribe_link(request, token: str):
    if request.method == "OPTIONS":
        return HttpResponse(status=200, headers={"Allow": ALLOWED})
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405, headers={"Allow": ALLOWED})
    claims = links.read_claims(token)
    if claims is None:
        return _invalid(request)
    if request.method == "POST":
        return _post(request, token, claims)
    return _landing(request, token, claims)


def _post(request, token, claims):
    # RFC 8058 section 3.2: the body holds List-Unsubscribe=One-Click, form-urlencoded or
    # multipart. The landing page's button posts the same body (with `from=page`).
    if request.POST.get("List-Unsubscribe") != "One-Click":
        if (wait := throttle.over_budget(request)) is not None:
            return _too_many(request, wait, token)
        return render(request, "unsubscribe/bad_request.html", status=400)
    channel = Channel.LANDING_PAGE if request.POST.get("from") == "page" else Channel.ONE_CLICK
    # "scope" is what pages rendered before the field was named breadth post.
    wanted = request.POST.get("breadth") or request.POST.get("scope")
    breadth = Breadth.COMMERCIAL if wanted == "commercial" else Breadth.LINK
    try:
        outcome = services.record_or_capture(
            claims=claims, breadth=breadth, evidence=_evidence(request, token, channel)
        )
    except ServiceError:
        return _invalid(request)
    # A repeat is stored once already; it only counts against the client's budget.
    if outcome is services.Outcome.REPEAT and (wait := throttle.over_budget(request)) is not None:
        return _too_many(request, wait)
    # 200 for a first and a repeated request alike; never a redirect (RFC 8058 section 3.2).
    # The page is the same for every recipient of a stream: render it once per process.
    commercial = breadth == Breadth.COMMERCIAL
    key = (get_language(), claims.stream_id, commercial)
    page = _done_pages.get_or_load(
        key,
        lambda: render_to_string(
            "unsubscribe/done.html",
            {"commercial": commercial, **links.names_for(claims)},
        ),
    )
    return HttpResponse(page)


def _landing(request, token, claims):
    if (wait := throttle.over_budget(request)) is not None:
        return _too_many(request, wait, token)
    try:
        recipient = links.recipient_for(claims)
        if recipient is None:
            return _invalid(request)
        choices = selectors.preference_choices(recipient)
        stopped_elsewhere = selectors.stopped_for_another_reason(recipient)
    except DatabaseError:
        # The button still works: a POST is captured even while the database is down.
        return render(request, "unsubscribe/landing.html", {"token": token, "degraded": True})
    return render(
        request,
        "unsubscribe/landing.html",
        {
            "token": token,
            "recipient": recipient,
            "topic_choices": [c for c in choices if c.key.startswith("topic:")],
            "stream_choice": next(c for c in choices if c.key == "stream"),
            "commercial_choice": next(c for c in choices if c.key == "commercial"),
            "stopped_elsewhere": stopped_elsewhere,
        },
    )


@csrf_exempt
@never_cache
@recipient_page_policy
def preferences(request, token: str):
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    claims = links.read_claims(token)
    if claims is None:
        return _invalid(request)
    try:
        recipient = links.recipient_for(claims)
        if recipient is None:
            return _invalid(request)
        receiving = set(request.POST.getlist("receive"))
        if request.POST.get("stop_all") != "on":
            receiving.add("commercial")
        # Over its budget a client may still opt out here, but not resubscribe.
        wait = throttle.over_budget(request)
        changed = services.save_preferences(
            recipient=recipient,
            receiving=receiving,
            evidence=_evidence(request, token, Channel.PREFERENCE_CENTRE),
            wording=_("Choose which mail you receive from %(sender)s.")
            % {"sender": recipient.tenant.name},
            opt_outs_only=wait is not None,
        )
    except DatabaseError:
        return render(request, "unsubscribe/unavailable.html", status=503)
    if wait is not None and not changed:
        return _too_many(request, wait, token)
    return render(
        request,
        "unsubscribe/preferences_saved.html",
        {"token": token, "changed": changed, "recipient": recipient},
    )
