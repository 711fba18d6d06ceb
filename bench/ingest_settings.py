"""Settings of the ingest benchmark only (bench/ingest_bench.py sets DATABASE_URL): production
behaviour (DEBUG off, persistent connections) plus the ceiling endpoint's urls."""

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES

DEBUG = False
ROOT_URLCONF = "bench.ingest_urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
DATABASES["default"]["CONN_MAX_AGE"] = 600
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
# Billing's outbox messages (rare) go to a Redis db of their own; no worker consumes them.
CELERY_BROKER_URL = "redis://127.0.0.1:6379/14"
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 0}
# The cache every process shares, as in production (the rate limits count requests in it), and
# the rate limits in place: a key's limit above what the load sends, so every request is
# counted and none refused.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/13",
    }
}
CREDITLINE_API_KEY_RATE = "10000000/min"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
