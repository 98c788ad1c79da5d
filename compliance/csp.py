"""Content Security Policies (CSP Level 3) of the pages that are not the default.

The default, for JSON answers, /healthz and anything else, is CONTENT_SECURITY_POLICY in
settings.py. No policy allows another origin or an inline script without a nonce: every
script, style sheet and image the pages use is served from our own static files.
"""

import base64
import hashlib

from csp.constants import NONCE, NONE, SELF
from csp.decorators import csp
from django.conf import settings

# The recipient pages' only style sheet, included inline by templates/unsubscribe/base.html.
RECIPIENT_PAGE_CSS = settings.BASE_DIR / "templates" / "unsubscribe" / "page.css"


def style_hash(css: bytes) -> str:
    """The hash-source that allows exactly this inline <style> (CSP3 section 8.4)."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(css).digest()).decode("ascii") + "'"


# Pages opened from an email by anyone: no script at all, nothing from elsewhere, only their
# own inline style. A hash rather than a nonce, because the "unsubscribed" page is rendered
# once per stream and served from a cache to every recipient.
RECIPIENT_PAGES = {
    "default-src": [NONE],
    "style-src": [style_hash(RECIPIENT_PAGE_CSS.read_bytes())],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
    "base-uri": [NONE],
}

# Django's admin loads its scripts, style sheets and SVG icons from /static/; autocomplete
# widgets ask the admin over XHR. Our own admin pages' inline <style> blocks carry the nonce.
ADMIN = {
    "default-src": [NONE],
    "script-src": [SELF],
    "style-src": [SELF, NONCE],
    "img-src": [SELF],
    "connect-src": [SELF],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
    "base-uri": [NONE],
}

# Swagger UI from drf-spectacular-sidecar: the bundles from /static/, one inline start-up script
# and one inline <style> (with the nonce, templates/drf_spectacular/swagger_ui.html), icons
# drawn as data: SVGs in its style sheet, and the schema and "try it out" requests over fetch.
API_DOCS = {
    "default-src": [NONE],
    "script-src": [SELF, NONCE],
    "style-src": [SELF, NONCE],
    "img-src": [SELF, "data:"],
    "connect-src": [SELF],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
    "base-uri": [NONE],
}

recipient_page_policy = csp(RECIPIENT_PAGES)
api_docs_policy = csp(API_DOCS)
# Our own pages under /admin/ that are not the admin site's views (their URLs are not in its
# namespace, so the middleware does not give them ADMIN by itself).
admin_page_policy = csp(ADMIN)
