"""The service's settings plus one extra URL: a bare view for the one-click baseline."""

from compliance.settings import *  # noqa: F403

ROOT_URLCONF = "bench.one_click_urls"
