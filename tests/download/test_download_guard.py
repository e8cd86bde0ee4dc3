"""Address guard: classification of every hidden spelling, without sending a packet beyond loopback."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from openpairs.net.guard import AddressPolicy, BlockedAddressError, block_reason, parse_ip
from openpairs.net.resolver import GuardedResolver

BLOCKED = [
    ("169.254.169.254", "link-local"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "reserved"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fe80::1", "link-local"),
    ("ff02::1", "multicast"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "link-local"),
]


@pytest.mark.parametrize(("text", "reason"), BLOCKED)
def test_blocked_ranges_are_named(text: str, reason: str) -> None:
    address = parse_ip(text)
    assert address is not None
    assert block_reason(address) == reason


@pytest.mark.parametrize(
    "text", ["8.8.8.8", "172.15.255.255", "172.32.0.1", "2606:4700::1111", "93.184.216.34"]
)
def test_public_addresses_pass(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert block_reason(address) is None
    assert AddressPolicy().refusal(address) is None


@pytest.mark.parametrize(
    ("spelling", "meant"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2852039166", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("169.254.43518", "169.254.169.254"),
        ("012.0.0.1", "10.0.0.1"),
        ("[::ffff:a9fe:a9fe]", "169.254.169.254"),
        ("[::1]", "::1"),
        ("127.0.0.1.", "127.0.0.1"),
    ],
)
def test_ip_spellings_are_decoded_and_refused(spelling: str, meant: str) -> None:
    assert str(parse_ip(spelling)) == meant
    with pytest.raises(BlockedAddressError):
        AddressPolicy().check_literal(spelling)


@pytest.mark.parametrize("name", ["example.com", "1.2.3.4.5", "256.1.1.1.1", "1e3", "09.1.1.1", "localhost"])
def test_names_are_not_ip_literals(name: str) -> None:
    assert parse_ip(name) is None
    assert AddressPolicy().check_literal(name) is False


def test_allow_list_opens_exactly_what_it_names() -> None:
    policy = AddressPolicy(allow=("127.0.0.1", "10.8.0.0/16"))
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("10.8.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) == "127.0.0.2 is loopback"
    assert policy.refusal(ipaddress.ip_address("10.9.0.1")) == "10.9.0.1 is private"
    assert policy.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None  # mapped form of an allowed one


def test_allow_private_keeps_metadata_and_multicast_closed() -> None:
    policy = AddressPolicy(allow_private=True)
    assert policy.refusal(ipaddress.ip_address("192.168.0.10")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) == "169.254.169.254 is link-local"
    assert policy.refusal(ipaddress.ip_address("224.0.0.1")) == "224.0.0.1 is multicast"


def test_bad_allow_entry_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        AddressPolicy(allow=("example.com",))


def test_resolver_refuses_names_that_resolve_to_loopback() -> None:
    """`localhost` resolves locally (no packet leaves the host) and must be refused at resolution."""

    async def resolve(policy: AddressPolicy, host: str) -> list[str]:
        resolver = GuardedResolver(policy)
        try:
            return [r["host"] for r in await resolver.resolve(host, 80)]
        finally:
            await resolver.close()

    with pytest.raises(BlockedAddressError, match="loopback"):
        asyncio.run(resolve(AddressPolicy(), "localhost"))
    with pytest.raises(BlockedAddressError, match="loopback"):
        asyncio.run(resolve(AddressPolicy(), "2130706433"))
    assert asyncio.run(resolve(AddressPolicy(allow=("127.0.0.1",)), "2130706433")) == ["127.0.0.1"]
