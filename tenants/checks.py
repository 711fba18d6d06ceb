"""System checks of the base layer: what the rate limits and caches need in production."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

# Caches every process on every host shares, whose increments the rate limits can trust.
_SHARED = ("django.core.cache.backends.redis.", "django.core.cache.backends.memcached.")


@register(Tags.caches, deploy=True)
def shared_cache_check(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """The rate limits count requests in the default cache, and the config stamp's caches are
    cleared through it: a per-process or per-host cache (locmem, files) would count each
    process or host apart, so production needs Redis or Memcached."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if settings.DEBUG or backend.startswith(_SHARED):
        return []
    return [
        Error(
            f"The default cache is {backend}, which the web processes of more than one host do "
            "not share: the API rate limits would count each host apart.",
            hint="Set CACHE_URL to Redis, e.g. redis://127.0.0.1:6379/1.",
            id="tenants.E001",
        )
    ]
