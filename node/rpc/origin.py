"""Which Host and Origin headers the JSON-RPC endpoint answers (DNS rebinding; ADR 0020).

A web page whose name an attacker rebinds to 127.0.0.1 reaches a loopback node from the
victim's browser, but the browser still sends the attacker's name: `Host: evil.example` and,
on a POST or a WebSocket upgrade, `Origin: http://evil.example`. So every request must carry a
Host the node knows, and an Origin (when a browser sends one) that is the node's own or listed
in `[rpc] cors_origins`:

- Host: an IP literal (a rebinding needs a name; an IP literal in Host means the client
  dialled that address itself), `localhost`, or a name listed in `[rpc] allowed_hosts`; with
  the node's port or no port. An `allowed_hosts` entry `NAME:PORT` admits exactly that pair
  (a reverse proxy on another port).
- Origin: absent (curl, the client library, back offices), the node's own origin
  (`http://` + the Host of the request), or one of `cors_origins`. Anything else, `null`
  included, is refused.

Pure functions of their arguments.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

DEFAULT_HOST_NAMES: Final = ("localhost",)
HOST_HEADER_CHARS_MAX: Final = 260


def split_host(value: str) -> tuple[str, int | None] | None:
    """(name, port) of a Host header value, lower-case; None when it is not one."""
    if not value or len(value) > HOST_HEADER_CHARS_MAX:
        return None
    value = value.lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[:end + 1], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, sep, port_text_ = value.partition(":")
        port_text = port_text_ if sep else None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        return name.rstrip("."), int(port_text)
    return name.rstrip("."), None


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name[1:-1] if name.startswith("[") else name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """The node's port and its configured names (`[rpc] allowed_hosts`, `cors_origins`)."""

    port: int
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()

    def host_allowed(self, host: str) -> bool:
        parsed = split_host(host)
        if parsed is None:
            return False
        name, port = parsed
        if port is not None and f"{name}:{port}" in self.allowed_hosts:
            return True
        known = (is_ip_literal(name) or name in DEFAULT_HOST_NAMES
                 or name in self.allowed_hosts)
        return known and (port is None or port == self.port)

    def origin_allowed(self, origin: str | None, host: str) -> bool:
        if origin is None or origin in self.cors_origins:
            return True
        return origin.lower() == f"http://{host.lower()}" and self.host_allowed(host)

    def refusal(self, host: str | None, origin: str | None) -> str | None:
        """Why a request with these headers is refused (None: it is not)."""
        if host is None:
            return "missing Host header"
        if not self.host_allowed(host):
            return (f"Host {host[:HOST_HEADER_CHARS_MAX]!r} is not this node's: use its "
                    f"address or a name in [rpc] allowed_hosts")
        if not self.origin_allowed(origin, host):
            return (f"Origin {origin!r} is neither this node's nor listed in "
                    f"[rpc] cors_origins")
        return None
