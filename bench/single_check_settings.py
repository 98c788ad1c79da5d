"""The service's settings plus one extra URL: a bare view for the single-check baseline."""

from compliance.settings import *  # noqa: F403

ROOT_URLCONF = "bench.single_check_urls"
