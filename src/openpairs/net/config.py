"""Fetch settings and the result of fetching one URL."""

from __future__ import annotations

from dataclasses import dataclass, field

from openpairs import __version__
from openpairs.net.optout import DEFAULT_DIRECTIVES

PROJECT_URL = "https://github.com/openpairs/openpairs"
# the flags of the opt-out signals (FetchConfig fields, all on by default; docs/optout.md)
OPT_OUT_FLAGS = (
    "respect_robots_txt",
    "respect_content_usage",
    "respect_content_signal",
    "respect_tdmrep",
    "respect_x_robots_tag",
    "respect_ai_txt",
)


@dataclass(frozen=True)
class FetchConfig:
    """How URLs are fetched: concurrency, deadlines, size cap, redirects, retries, politeness, safety."""

    connections: int = 128  # concurrent requests per worker process
    per_host: int = 16  # concurrent connections to one host
    connect_timeout: float = 5.0
    read_timeout: float = 10.0  # longest silence while reading
    timeout: float = 20.0  # total deadline of one request (headers + body)
    deadline: float = 90.0  # total deadline of one URL, redirects and retries included
    max_bytes: int = 16 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 2  # extra attempts for timeouts, connection errors, 408, 429, 5xx
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    retry_after_cap: float = 30.0  # a longer Retry-After ends the row as http_429 (retry it later)
    host_max_failures: int = 8  # consecutive transient failures before a host is backed off
    host_cooldown: float = 30.0
    dns_cache_seconds: int = 300
    user_agent_token: str = ""
    opt_out_directives: tuple[str, ...] = DEFAULT_DIRECTIVES
    # opt-out signals (net/signals.py), every one on by default
    respect_robots_txt: bool = True  # robots.txt Allow/Disallow for our groups
    respect_content_usage: bool = True  # IETF AIPREF Content-Usage: robots.txt lines and response header
    respect_content_signal: bool = True  # Cloudflare Content-Signal lines of robots.txt
    respect_tdmrep: bool = True  # TDMRep: tdmrep.json, tdm-reservation header, the page's meta
    respect_x_robots_tag: bool = True  # X-Robots-Tag response header (opt_out_directives)
    respect_ai_txt: bool = True  # Spawning ai.txt
    robots_agents: tuple[str, ...] = ()  # more robots.txt/ai.txt groups to obey (GPTBot, CCBot, ...)
    allow_addresses: tuple[str, ...] = ()
    allow_private_addresses: bool = False
    mirror: str = ""  # fetch `{mirror}/{scheme}/{host}{path}?{query}` instead of the URL itself
    seed: int = 0  # jitter seed

    def __post_init__(self) -> None:
        from openpairs.net.guard import AddressPolicy, mirror_addresses

        AddressPolicy(allow=self.allow_addresses)  # a bad --allow-address fails here, clearly
        mirror_addresses(self.mirror)
        if self.max_redirects < 0 or self.retries < 0 or self.max_bytes < 1:
            raise ValueError("max_redirects and retries must be >= 0 and max_bytes positive")

    def user_agent(self) -> str:
        """The User-Agent header: names openpairs and its URL, plus the user's token."""
        token = f"; {self.user_agent_token}" if self.user_agent_token else ""
        return f"Mozilla/5.0 (compatible; openpairs/{__version__}; +{PROJECT_URL}{token})"

    def agents(self) -> tuple[str, ...]:
        """Names an X-Robots-Tag or robots.txt group may use to address us."""
        return ("openpairs", self.user_agent_token) if self.user_agent_token else ("openpairs",)

    def robots_groups(self) -> tuple[str, ...]:
        """The robots.txt and ai.txt groups we obey: ours and the AI-training groups the user named."""
        return tuple(
            dict.fromkeys(a.strip().lower() for a in (*self.agents(), *self.robots_agents) if a.strip())
        )


@dataclass
class FetchResult:
    """What fetching one URL gave: a status (`ok` or why not), the body, and what happened on the way."""

    status: str
    body: bytes | None = None
    error: str = ""
    mime: str = ""
    redirects: int = 0
    attempts: int = 0
    location: str | None = None  # set on a redirect response (internal)
    retry_after: float | None = None
    opt_out_signal: str | None = None  # set with status opted_out: which signal, e.g. `x-robots-tag: noai`
    notes: list[str] = field(default_factory=list)  # counters for the shard stats (an unparsable file)
