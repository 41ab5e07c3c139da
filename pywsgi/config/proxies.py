"""Trusted proxies: the settings' converters (docs/proxies.md).

The work itself is done in C, per request, by the reactor (csrc/proxy_trust.c for
X-Forwarded-* and Forwarded, csrc/proxy_protocol.c for the PROXY protocol); this module only
checks what the user typed, so a mistake is a clear startup error.
"""
from __future__ import annotations

from typing import Any, List

# The forwarding headers pywsgi can honour from a trusted proxy.
HEADERS = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
           "forwarded")
DEFAULT_HEADERS = ("x-forwarded-for", "x-forwarded-proto")
MAX_NETWORKS = 64  # PW_TRUST_MAX in csrc/proxy_trust.h


def as_trust_proxy(value: Any) -> str:
    """One --trust-proxy value: an IPv4/IPv6 address, a CIDR network, or 'unix'."""
    if not isinstance(value, str):
        raise ValueError(f"expected an address or CIDR network, got {type(value).__name__}")
    text = value.strip()
    if text.lower() == "unix":
        return "unix"
    import ipaddress
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"expected an IP address, a CIDR network such as 10.0.0.0/8 or "
                         f"'unix', got {value!r}") from None
    return str(net)


def as_trust_proxy_list(value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    items = [as_trust_proxy(item) for item in value]
    if len(items) > MAX_NETWORKS:
        raise ValueError(f"at most {MAX_NETWORKS} networks, got {len(items)}")
    return items


def as_trust_proxy_header(value: Any) -> str:
    """One --trust-proxy-header value: a header name from HEADERS, or 'none'."""
    if not isinstance(value, str):
        raise ValueError(f"expected a header name, got {type(value).__name__}")
    name = value.strip().lower()
    if name not in HEADERS + ("none",):
        raise ValueError(f"expected one of {', '.join(HEADERS)} or none, got {value!r}")
    return name


def as_trust_proxy_header_list(value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    return [as_trust_proxy_header(item) for item in value]
