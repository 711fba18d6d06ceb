"""What the portal's paged tables share: the `after` cursor from the query string (a row id;
anything else is the first page). The pager itself is templates/portal/_pager.html."""

from django.http import HttpRequest

PAGE_SIZE = 50


def after_param(request: HttpRequest) -> int | None:
    raw = request.GET.get("after", "")
    # ASCII digits only: str.isdigit() is true of '²', which int() refuses.
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
