"""Where webhooks may go: http(s) URLs whose host resolves to no link-local, multicast, reserved
or unspecified address, and to a private or loopback one only where the settings allow it. The
endpoint model's validation and every send check it (operations.webhooks)."""

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeDestination(Exception):
    """The endpoint's host resolves to an address webhooks must not reach."""


def _config(name: str) -> Any:
    return settings.OPERATIONS_REPORTS[name]


def check_destination(url: str) -> None:
    """Refuse a URL that is not http(s), or whose host resolves to a link-local (cloud metadata
    lives at 169.254.169.254), multicast, reserved or unspecified address, or to a private or
    loopback one unless OPERATIONS_REPORTS["WEBHOOK_ALLOW_PRIVATE"]. Every resolved address is
    checked: a name with one bad address is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestination("only http and https URLs with a host")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeDestination(f"host {parts.hostname!r} does not resolve ({exc})") from exc
    allow_private = bool(_config("WEBHOOK_ALLOW_PRIVATE"))
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None)
        address = mapped or address
        if address.is_link_local or address.is_multicast or address.is_unspecified:
            raise UnsafeDestination(f"{parts.hostname} resolves to {address} (link-local/special)")
        if address.is_private or address.is_loopback:
            if not allow_private:
                raise UnsafeDestination(f"{parts.hostname} resolves to private {address}")
        elif address.is_reserved:
            raise UnsafeDestination(f"{parts.hostname} resolves to reserved {address}")
