"""Every kind of page answers with its Content-Security-Policy, and none allows another origin
or an inline script without a nonce (compliance/csp.py, settings.CONTENT_SECURITY_POLICY)."""

import base64
import hashlib
import re
from urllib.parse import urlparse

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

# What a source may be: a keyword, a nonce or a hash. Nothing names a host or a scheme, except
# the data: images drawn by Swagger UI's style sheet.
OWN_SOURCE = re.compile(r"'(self|none|nonce-[A-Za-z0-9+/]+=*|sha256-[A-Za-z0-9+/]+=*)'")


def policy_of(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = [d.split() for d in header.split(";") if d.strip()]
    return {name: sources for name, *sources in directives}


def assert_no_outside_origin_and_no_inline_script(policy: dict[str, list[str]]) -> None:
    for directive, sources in policy.items():
        for source in sources:
            allowed = OWN_SOURCE.fullmatch(source) or (directive, source) == ("img-src", "data:")
            assert allowed, f"{directive} allows {source}"
    # Scripts fall back to default-src (CSP3 section 6.1.1): both must hold.
    for directive in ("script-src", "default-src"):
        assert "'unsafe-inline'" not in policy.get(directive, [])
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]


def nonce_of(policy: dict[str, list[str]], directive: str) -> str:
    [nonce] = [s[len("'nonce-") : -1] for s in policy[directive] if s.startswith("'nonce-")]
    return nonce


RESTRICTIVE_DEFAULT = {
    "default-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'none'"],
    "frame-ancestors": ["'none'"],
}


def test_json_answers_and_healthz_forbid_everything(client, api_client):
    answers = [
        client.get("/healthz"),
        api_client("suppression:read").get(
            "/api/v1/suppressions/check", {"address": "a@example.com", "stream": "marketing"}
        ),
        APIClient().get("/api/v1/suppressions/check"),
        client.get("/no-such-page"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 401, 404]
    for answer in answers:
        assert policy_of(answer) == RESTRICTIVE_DEFAULT


def test_recipient_pages_allow_only_their_own_style_by_its_hash(client, mint):
    path = urlparse(mint().url).path
    pages = [
        client.get(path),
        client.post(path, {"List-Unsubscribe": "One-Click", "from": "page"}),
        # The second "unsubscribed" page comes from the per-process cache.
        client.post(path, {"List-Unsubscribe": "One-Click", "from": "page"}),
        client.post(path + "/preferences", {"receive": ["stream"]}),
        client.get("/u/invalid-token-here"),
        client.post(path, {"List-Unsubscribe": "Nope"}),
    ]
    assert [p.status_code for p in pages] == [200, 200, 200, 200, 400, 400]
    for page in pages:
        policy = policy_of(page)
        assert_no_outside_origin_and_no_inline_script(policy)
        [css] = re.findall(r"<style>(.*?)</style>", page.content.decode(), re.DOTALL)
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        assert policy == {
            "default-src": ["'none'"],
            "style-src": [f"'sha256-{digest}'"],
            "form-action": ["'self'"],
            "frame-ancestors": ["'none'"],
            "base-uri": ["'none'"],
        }
        assert "style=" not in page.content.decode()


ADMIN_PAGES = [
    # The dashboard, with its own inline <style> and SVG charts, and the model list.
    "/admin/",
    "/admin/models/",
    "/admin/suppression/suppression/",
    "/admin/compliance/stream/add/",
    # The complaint-rates dashboard, with its own inline <style>.
    "/admin/fbl/dailycount/",
    # The pre-send check form, with its own inline <style>.
    "/admin/preflight/",
    # Our forms under /admin/ outside the admin site: they post, and use the admin's styles.
    "/admin/proof/",
    "/admin/consent/import/",
]


def test_admin_pages_run_scripts_only_from_our_static_files(staff_client):
    login = Client().get("/admin/login/")
    pages = [login] + [staff_client.get(url) for url in ADMIN_PAGES]
    assert [p.status_code for p in pages] == [200] * len(pages)
    for page in pages:
        policy = policy_of(page)
        assert_no_outside_origin_and_no_inline_script(policy)
        assert policy["script-src"] == ["'self'"]
        assert policy["default-src"] == ["'none'"]
        assert policy["form-action"] == ["'self'"]
        html = page.content.decode()
        # Every script is a file; every inline style block carries the page's nonce.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html)
        for tag in re.findall(r"<style[^>]*>", html):
            assert tag == f'<style nonce="{nonce_of(policy, "style-src")}">'


def test_the_rates_dashboard_style_is_allowed_by_the_nonce(staff_client):
    page = staff_client.get("/admin/fbl/dailycount/")
    nonce = nonce_of(policy_of(page), "style-src")
    assert f'<style nonce="{nonce}">' in page.content.decode()
    # A fresh nonce for every response (CSP3 section 7.2: never reused).
    assert nonce != nonce_of(policy_of(staff_client.get("/admin/fbl/dailycount/")), "style-src")


def test_api_docs_inline_script_and_style_carry_the_nonce(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    policy = policy_of(page)
    assert_no_outside_origin_and_no_inline_script(policy)
    nonce = nonce_of(policy, "script-src")
    assert policy["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert policy["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert policy["connect-src"] == ["'self'"]
    html = page.content.decode()
    inline = re.findall(r"<(script|style)(?![^>]*\bsrc=)([^>]*)>", html)
    assert sorted(tag for tag, _ in inline) == ["script", "style"]
    assert all(attrs == f' nonce="{nonce}"' for _, attrs in inline)
    # Swagger UI would otherwise show a badge image from validator.swagger.io.
    assert '"validatorUrl": null' in html


def test_the_other_security_headers_are_kept(client, mint):
    for response in (client.get(urlparse(mint().url).path), client.get("/admin/login/")):
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"
