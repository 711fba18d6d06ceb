"""The test suite: real PostgreSQL and Redis, a fresh database each run."""

import os

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, _database, env

DATABASES["default"] = _database(
    env.str("TEST_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/creditline")
)
DATABASES["default"]["CONN_MAX_AGE"] = 0
# One database per test process, so parallel runs on one machine never share one.
DATABASES["default"]["TEST"] = {"NAME": f"test_creditline_{os.getpid()}"}

CELERY_BROKER_URL = env.str("TEST_CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
# The kill tests run real workers against a Redis of their own with a short visibility timeout.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=45),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
    "max_retries": 0,
}
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SECRET_KEY = "test-only-secret-key-not-for-use-anywhere-else-0123456789"
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
CREDITLINE_RAISE_LISTENER_ERRORS = True
# One process per test run: an in-memory cache is shared by its threads and never by two runs.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
