"""Where outgoing webhooks may go, and what an endpoint may subscribe to.

Two checks guard a target. At creation (`webhook_endpoint_validate`), without any DNS lookup:
https only, a host, no literal address that is not public (in any spelling the resolver
accepts: `2130706433`, `0x7f.1`, `[::ffff:10.0.0.1]`), no name that is local by definition.
At every delivery (`address_refused`, applied to what the name resolves to then): the address
the connection will use is public. The second check is the one that counts (a name can change
what it resolves to); the first tells the integration at once instead of after six failures.

Local development and the test suite may deliver to 127.0.0.1 over http
(`DEBUG` or `WEBHOOKS_ALLOW_PRIVATE_TARGETS`); a server never does.
"""

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.conf import settings

from billing.exceptions import InvalidWebhookEventTypes, InvalidWebhookUrl

# What billing and metering publish (tenants.events.publish); an endpoint subscribes to some
# of them, or to all with an empty list. tests/billing/test_webhook_endpoints.py fails when code
# publishes a type that is missing here.
WEBHOOK_EVENT_TYPES = (
    "auto_topup.capped",
    "balance.exhausted",
    "balance.low",
    "credits.expired",
    "subscription.activated",
    "subscription.canceled",
    "subscription.past_due",
    "subscription.renewed",
    "topup.failed",
    "topup.refunded",
    "topup.succeeded",
    "workflow.resumable",
    "workflow.suspended",
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes that carry an IPv4 address in their last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a private translator's
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated (RFC 4291); `::1` and `::` too

# Names that never leave the machine or the site, whatever a resolver says (RFC 6761, 6762,
# 8375, and the `.internal` of cloud providers' private zones).
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan")


def private_targets_allowed() -> bool:
    return bool(settings.DEBUG or getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_TARGETS", False))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a mapped, 6to4 or NAT64 address reaches."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refused(ip: IPAddress) -> bool:
    """True unless `ip` is a public unicast address: loopback, private, link-local (cloud
    metadata), shared, reserved and multicast are refused, and so is an IPv6 address that
    reaches one of them through the IPv4 address it embeds."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL or ip in _IPV4_COMPATIBLE:
            return True
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return address_refused(embedded)
        if ip.is_reserved:
            return True
    return not ip.is_global or ip.is_multicast


def _literal_addresses(host: str) -> list[IPAddress] | None:
    """The addresses `host` spells without a DNS lookup, or None for a name."""
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _is_local_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or "." not in name or name.endswith(_LOCAL_SUFFIXES)


def _refuse_url(url: str, message: str) -> InvalidWebhookUrl:
    return InvalidWebhookUrl(message, url=url, fields={"url": [message]})


def webhook_url_validate(url: str) -> None:
    """Raise InvalidWebhookUrl (422, naming `url`) for a target we would never deliver to."""
    parts = urlsplit(url)
    allowed = private_targets_allowed()
    if parts.scheme not in (("https", "http") if allowed else ("https",)):
        must = "http(s)" if allowed else "https"
        raise _refuse_url(url, f"A webhook endpoint URL must be {must}.")
    host = parts.hostname
    if not host:
        raise _refuse_url(url, "A webhook endpoint URL must name a host.")
    if allowed:
        return
    addresses = _literal_addresses(host)
    if addresses is None:
        if _is_local_name(host):
            raise _refuse_url(url, f"{host} is a local name, not a public host.")
        return
    for ip in addresses:
        if address_refused(ip):
            # Name the IPv4 address that a mapped, 6to4 or NAT64 address reaches.
            reached = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
            target = str(reached or ip)
            is_what = "" if target == host.lower() else f" {target},"
            raise _refuse_url(url, f"{host} is{is_what} not a public address.")


def webhook_event_types_validate(event_types: Iterable[str]) -> list[str]:
    """The types, each once, in the catalogue's order; InvalidWebhookEventTypes (422, naming
    `event_types`) for one that nothing publishes (it would never be delivered)."""
    wanted = list(event_types)
    unknown = [t for t in wanted if t not in WEBHOOK_EVENT_TYPES]
    if unknown:
        message = (
            f"Unknown event type '{unknown[0]}'; the types are: {', '.join(WEBHOOK_EVENT_TYPES)}."
        )
        raise InvalidWebhookEventTypes(message, fields={"event_types": [message]})
    return [t for t in WEBHOOK_EVENT_TYPES if t in wanted]
