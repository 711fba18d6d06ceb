"""Who is on the other end of a request: the client's address, for rate limits and lockouts.

`REMOTE_ADDR` is the peer that opened the connection. Only when that peer is a proxy named in
`CREDITLINE_TRUSTED_PROXIES` (addresses or networks) is `X-Forwarded-For` read, from the right:
each trusted proxy appended the address it was connected from, so the first address that is
not a trusted proxy is the client. Anything to its left was written by the client and is never
believed. With no trusted proxies the header is ignored: a client cannot name its own address.
"""

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def _trusted() -> tuple[Network, ...]:
    spec: Sequence[str] = getattr(settings, "CREDITLINE_TRUSTED_PROXIES", ())
    return _networks(tuple(spec))


def _parse(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None


def _is_trusted(address: Address, trusted: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def client_address(request: HttpRequest) -> str:
    remote = str(request.META.get("REMOTE_ADDR", ""))
    trusted = _trusted()
    peer = _parse(remote)
    if not trusted or peer is None or not _is_trusted(peer, trusted):
        return remote
    client = peer
    for hop in reversed(str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")):
        address = _parse(hop)
        if address is None:
            break  # not written by a proxy of ours: stop at the last address we can trust
        client = address
        if not _is_trusted(address, trusted):
            break
    return str(client)


def client_key(request: HttpRequest) -> str:
    """What limits count against (the API's and the logins'): the address, or for IPv6 the
    first address of its /64 (one customer's network; a client holding a /64 could otherwise
    take a fresh address for every attempt). Addresses that do not parse share "unknown"."""
    address = _parse(client_address(request))
    if address is None:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)
