"""Address guard: refuse to connect to loopback, private, link-local, multicast and reserved addresses.

Hosts are classified after resolution (and IP literals in any spelling a resolver accepts: dotted,
decimal `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`, IPv4-mapped IPv6), so a URL cannot reach the
cloud metadata service or the local network by hiding an address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges that `is_global` lets through but that must never be fetched (documentation, benchmarking).
EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n) for n in ("100.64.0.0/10", "198.18.0.0/15", "192.0.0.0/24", "64:ff9b:1::/48")
)


# What --allow-private-addresses opens; link-local (cloud metadata), multicast and reserved stay closed.
PRIVATE_REASONS = frozenset({"loopback", "private", "not global"})


class BlockedAddressError(OSError):
    """Raised when a host resolves to an address the guard refuses."""


def parse_ip(host: str) -> IPAddress | None:
    """The address a host string denotes if it is an IP literal in any accepted spelling, else None."""
    text = host.strip().strip("[]").rstrip(".")
    if not text:
        return None
    try:
        return _unmap(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        pass
    return _parse_inet_aton(text)


def _parse_inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """inet_aton spellings: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x)."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        number = _parse_int_part(part)
        if number is None:
            return None
        numbers.append(number)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(value)


def _parse_int_part(part: str) -> int | None:
    lowered = part.lower()
    try:
        if lowered.startswith("0x"):
            return int(lowered[2:] or "0", 16)
        if len(lowered) > 1 and lowered.startswith("0"):
            return int(lowered[1:], 8)
        return int(lowered, 10) if lowered.isdigit() else None
    except ValueError:
        return None


def _unmap(address: IPAddress) -> IPAddress:
    """IPv4-mapped (::ffff:a.b.c.d) and 6to4/NAT64-embedded addresses count as the IPv4 inside."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def block_reason(address: IPAddress) -> str | None:
    """Why `address` must not be fetched (e.g. 'private'), or None for a public unicast address."""
    address = _unmap(address)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved or any(address in n for n in EXTRA_BLOCKED)),
        ("private", address.is_private),
    )
    for reason, hit in checks:
        if hit:
            return reason
    return None if address.is_global else "not global"


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses may be fetched: public ones, plus explicit exceptions."""

    allow: tuple[str, ...] = ()  # addresses or networks (CIDR) always allowed
    allow_private: bool = False  # allow private/loopback/link-local ranges altogether
    _networks: tuple[IPNetwork, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks = []
        for entry in self.allow:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError as exc:
                raise ValueError(f"--allow-address {entry!r} is not an IP address or network") from exc
        object.__setattr__(self, "_networks", tuple(networks))

    def refusal(self, address: IPAddress) -> str | None:
        """Why this policy refuses `address`, or None when it may be fetched."""
        address = _unmap(address)
        if any(address.version == n.version and address in n for n in self._networks):
            return None
        reason = block_reason(address)
        if reason is None or (self.allow_private and reason in PRIVATE_REASONS):
            return None
        return f"{address} is {reason}"

    def check_addresses(self, host: str, addresses: Iterable[str]) -> None:
        """Raise BlockedAddressError if any resolved address of `host` is refused."""
        for text in addresses:
            reason = self.refusal(ipaddress.ip_address(text.split("%", 1)[0]))
            if reason:
                raise BlockedAddressError(f"{host} resolves to a refused address: {reason}")

    def check_literal(self, host: str) -> bool:
        """For an IP-literal host: raise if refused and return True; False when `host` is a name."""
        address = parse_ip(host)
        if address is None:
            return False
        reason = self.refusal(address)
        if reason:
            raise BlockedAddressError(f"refused address: {reason}")
        return True


def mirror_addresses(mirror: str) -> tuple[str, ...]:
    """The addresses a mirror origin is reached at (allowed implicitly); a clear error for a bad one."""
    if not mirror:
        return ()
    url = urlsplit(mirror)
    if url.scheme not in ("http", "https"):
        raise ValueError(f"--mirror must be an http(s) URL, got {mirror!r}")
    host = url.hostname or ""
    if host == "localhost":
        return ("127.0.0.1", "::1")
    address = parse_ip(host)
    if address is None:
        raise ValueError(f"--mirror must name its host by IP address (it is implicitly allowed): {mirror}")
    return (str(address),)
