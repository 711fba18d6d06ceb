"""Settings of the ingest benchmark only (bench/ingest_bench.py sets DATABASE_URL): production
behaviour (DEBUG off, persistent connections) plus the ceiling endpoint's urls."""

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES

DEBUG = False
ROOT_URLCONF = "bench.ingest_urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
DATABASES["default"]["CONN_MAX_AGE"] = 600
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
# Billing's balance listener enqueues (rarely) on a Redis db of its own; no worker consumes it.
CELERY_BROKER_URL = "redis://127.0.0.1:6379/14"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
