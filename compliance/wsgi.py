"""WSGI entry point for gunicorn: `gunicorn compliance.wsgi`."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

from compliance.checks import refuse_to_start_on_errors

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance.settings")

application = get_wsgi_application()

# gunicorn runs no system checks: refuse to serve with a development secret in production or a
# setting out of range (compliance/checks.py), as manage.py would, instead of failing later.
refuse_to_start_on_errors("the web service")

# Everything loaded so far lives as long as the process. Moving it out of the collector's reach
# keeps full collections small: a batch check allocates enough objects to trigger them, and a
# pass over the whole application's objects added 40 ms to some requests. The URL patterns are
# loaded first so that every view module is among them.
get_resolver().check()  # imports every URL module and view
gc.collect()
gc.freeze()
