"""Settings from the environment (OPERATOR.md's variables), via pydantic-settings."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The four union sources, each with its own database and pool.
SOURCES = ("members", "claims", "contracts", "recruitment")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UNION_GATEWAY_", extra="ignore")

    database_url: str | None = None
    members_database_url: str | None = None
    claims_database_url: str | None = None
    contracts_database_url: str | None = None
    recruitment_database_url: str | None = None
    #: Where the built-in simulator keeps its settlement records; defaults
    #: to the members database.
    simulator_database_url: str | None = None

    insurance_url: str | None = None
    insurance_token: str | None = None
    insurance_timeout_seconds: float = 2.0
    insurance_max_attempts: int = 4
    #: Consecutive failed insurance calls that open the circuit breaker.
    insurance_breaker_threshold: int = 5
    #: Seconds the open breaker refuses calls before one probe is let through.
    insurance_breaker_cooldown_seconds: float = 10.0

    redis_url: str | None = None

    #: Where the embedded PostgreSQL keeps its data when no URL is set.
    home: Path = Field(default_factory=lambda: Path.cwd() / ".union-gateway")
    demo_members: int = 3000

    #: False turns dataloader batching off: every load is its own statement.
    #: Only the benchmark's N+1 baseline uses it.
    dataloader_batching: bool = True

    pool_min_size: int = 1
    pool_max_size: int = 10
    #: How long a validated API key is trusted before it is looked up again;
    #: bounds how late a revocation reaches another replica.
    api_key_cache_seconds: float = 2.0
    #: Seconds between background decisions of PENDING_REVIEW claims (0: off).
    pending_retry_seconds: float = 5.0

    def url_for(self, source: str) -> str | None:
        """The URL a source connects to: its own variable, else the shared one."""
        return getattr(self, f"{source}_database_url") or self.database_url

    @property
    def embedded(self) -> bool:
        """True when no database URL at all is set: we run PostgreSQL ourselves."""
        return all(self.url_for(source) is None for source in SOURCES)
