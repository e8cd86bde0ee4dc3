"""An aiohttp resolver that applies the address guard to every address a name resolves to."""

from __future__ import annotations

import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

from openpairs.net.guard import AddressPolicy, parse_ip


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that applies an AddressPolicy to every address it returns (every hop)."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        from aiohttp.resolver import DefaultResolver

        self.policy = policy
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve `host` and refuse it if any of its addresses is blocked."""
        if self.policy.check_literal(host):
            address = str(parse_ip(host))
            return [_literal_result(host, address, port)]
        results = await self.inner.resolve(host, port, family)
        self.policy.check_addresses(host, (r["host"] for r in results))
        return results

    async def close(self) -> None:
        """Release the inner resolver."""
        await self.inner.close()


def _literal_result(host: str, address: str, port: int) -> Any:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
