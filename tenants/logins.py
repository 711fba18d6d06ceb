"""Session logins (the portal's and the admin's pages): a lockout with backoff, and no login
with the old fixed demo password in production.

The lockout is django-axes (settings `AXES_*`, config/settings/base.py), counting failed
logins per client address (tenants.clients: the same trusted-proxy rule as the API's limits;
an IPv6 client counts as its /64). After `AXES_FAILURE_LIMIT` failures the address is locked
out for `CREDITLINE_LOGIN_LOCKOUT_SECONDS`; each further lockout within a day doubles it, up to
a day (`login_cool_off`). Attempts while locked out are refused without being counted, so a
person who keeps trying is not locked out for longer; a successful login does not reset the
count (one known password must not buy unlimited guesses at others). A locked-out client gets
a 429 page with `Retry-After` (`lockout_response`).
"""

import logging
import math
from datetime import timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from tenants.clients import client_address, client_key

logger = logging.getLogger(__name__)

# What `seed_demo` set before it made random passwords; production never accepts it.
OLD_DEMO_PASSWORD = "creditline"
MAX_COOL_OFF = timedelta(days=1)


class LoginBackend(AxesStandaloneBackend):
    """First in AUTHENTICATION_BACKENDS: refuses a locked-out client (axes) and, where
    `CREDITLINE_REFUSE_DEMO_PASSWORD` is on, the old demo password, before any backend checks
    a password. Calls without a request (Django's test client, a shell) are not web logins:
    they pass to the next backend."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if password == OLD_DEMO_PASSWORD and getattr(
            settings, "CREDITLINE_REFUSE_DEMO_PASSWORD", False
        ):
            logger.warning(
                "login as %r with the old demo password refused; "
                "`manage.py seed_demo --reset-admin-password` sets a random one",
                username,
            )
            raise PermissionDenied("The old demo password is refused in production.")
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def login_client(request: HttpRequest) -> str:
    """The address axes counts against (AXES_CLIENT_IP_CALLABLE): as the API's limits count
    (axes stores an address, so one that does not parse is passed on as it is)."""
    key = client_key(request)
    return client_address(request) if key == "unknown" else key


def login_cool_off(request: HttpRequest | None) -> timedelta:
    """AXES_COOLOFF_TIME: the base, doubled for every lockout this address earned in a day."""
    base = timedelta(seconds=getattr(settings, "CREDITLINE_LOGIN_LOCKOUT_SECONDS", 60))
    address = getattr(request, "axes_ip_address", None)
    if not address:
        return base
    failures = AccessFailureLog.objects.filter(
        ip_address=address, attempt_time__gte=timezone.now() - MAX_COOL_OFF
    ).count()
    lockouts = failures // max(1, int(settings.AXES_FAILURE_LIMIT))
    return min(base * 2 ** max(0, lockouts - 1), MAX_COOL_OFF)


def lockout_seconds(request: HttpRequest) -> int:
    """Seconds until the client's lockout ends."""
    address = getattr(request, "axes_ip_address", None)
    last = AccessAttempt.objects.filter(ip_address=address).aggregate(at=Max("attempt_time"))["at"]
    ends = (last or timezone.now()) + login_cool_off(request)
    return max(1, math.ceil((ends - timezone.now()).total_seconds()))


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: a 429 page saying how long to wait, with Retry-After."""
    seconds = lockout_seconds(request)
    response = render(
        request,
        "registration/locked_out.html",
        {"seconds": seconds, "minutes": math.ceil(seconds / 60)},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
