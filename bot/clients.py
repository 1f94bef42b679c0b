"""Who is on the other end of a request: the client's address, behind the department's
reverse proxies or not. One function for the web chat's limits, the console's login
throttle and /metrics."""

from __future__ import annotations

import ipaddress
from typing import Iterable


def of_request(request, trusted: Iterable[str]) -> str:
    """:func:`client_address` of an aiohttp request."""
    return client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                          trusted)


def client_address(peer: str | None, forwarded_for: Iterable[str],
                   trusted: Iterable[str]) -> str:
    """The peer's address, or, when the peer is a trusted proxy, the last X-Forwarded-For
    hop that is not one (every header line counts: a proxy may append its own line after
    the client's forged one). IPv6 clients are counted by their /64, which one household
    or one attacker holds whole."""
    trusted = set(trusted)
    address = peer or ""
    if address in trusted:
        hops = [h.strip() for line in forwarded_for for h in line.split(",")]
        for hop in reversed(hops):
            if hop and hop not in trusted:
                address = hop[:64]
                break
    return _network(address)


def _network(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and not ip.is_loopback:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
