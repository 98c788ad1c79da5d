"""Test settings: the service's settings with fast hashing and a test-only hash key.

The database follows DATABASE_URL exactly as in production (SQLite when unset), so CI runs the
suite on the real PostgreSQL.
"""

import os
import tempfile
from pathlib import Path

# The tests run in development mode, as `make run` does: the service itself defaults to
# production (DEBUG off). Set before the import, since DEBUG decides other defaults there.
os.environ["DEBUG"] = "true"

from compliance.settings import *  # noqa: E402, F403

# Fast for users the tests create; PBKDF2 still verifies accounts made by subprocesses.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
ADDRESS_HASH_KEY = "test-address-hash-key-0123456789abcdef"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests call tasks in-process; the worker integration test talks to the real broker itself.
CELERY_TASK_ALWAYS_EAGER = True
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A file rather than memory, so that commands run as subprocesses see the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}  # noqa: F405

# Tests create and change keys and streams between requests; they see each change at once.
LOOKUP_CACHE_SECONDS = 0
# One-click opt-outs are applied within the request, as in the embedded default; the test of
# the deferred path turns this off itself.
UNSUBSCRIBE_APPLY_INLINE = True
# Each test run spools to its own directory, never to the service's own spool.
UNSUBSCRIBE_SPOOL_DIR = Path(tempfile.mkdtemp(prefix="test-unsubscribe-spool-"))
# The dashboard's figures come from the roll-up task, which the tests run themselves.
DASHBOARD_ROLL_UP_ON_VIEW = False
