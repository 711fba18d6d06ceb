"""A response that carries a secret shown once (a new API key, a webhook signing secret)."""

from django.http import HttpResponse


def shown_once(response: HttpResponse) -> HttpResponse:
    """Never stored by a browser or a proxy: Back, a cache or a shared machine cannot show the
    secret again (issue 12's rule)."""
    response["Cache-Control"] = "no-store"
    return response
