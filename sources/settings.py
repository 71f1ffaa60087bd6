"""Settings from the environment (OPERATOR.md's variables), via pydantic-settings."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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

    # Operation limits and rate of cost points: defaults for every API key; a key's own
    # row in gateway.api_keys (same names, NULL = default) overrides them (web/limits.py).
    max_depth: int = 15
    max_aliases: int = 30
    max_root_fields: int = 20
    max_tokens: int = 5_000
    max_document_bytes: int = 100_000
    max_cost: int = 10_000
    #: A key's bucket of cost points, refilled evenly over rate_window_seconds.
    rate_points: int = 30_000
    rate_window_seconds: float = 60.0
    #: Larger POST /graphql bodies get 413 before they are read.
    max_body_bytes: int = 1_048_576
    #: An operation still running after this is cancelled (its connections go back to the pools).
    request_timeout_seconds: float = 15.0
    #: Origins (comma-separated) whose pages may call the API from a browser; empty: none.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    #: Where the embedded PostgreSQL keeps its data when no URL is set.
    home: Path = Field(default_factory=lambda: Path.cwd() / ".union-gateway")
    demo_members: int = 3000

    #: False turns dataloader batching off: every load is its own statement.
    #: Only the benchmark's N+1 baseline uses it.
    dataloader_batching: bool = True

    #: Gateway processes `serve` runs on its port (serve --workers); each has its own pools.
    workers: int = Field(default=1, ge=1, le=64)
    #: More workers than this dying within a minute stops `serve --workers` (exit 1): a crash loop.
    worker_restarts_per_minute: int = Field(default=10, ge=0)
    #: Set by `serve --workers` for its workers: the file where they share rate-limit buckets.
    rate_limit_file: Path | None = None

    pool_min_size: int = 1
    pool_max_size: int = 10
    #: How long a validated API key is trusted before it is looked up again;
    #: bounds how late a revocation reaches another replica.
    api_key_cache_seconds: float = 2.0
    #: Seconds between background decisions of PENDING_REVIEW claims (0: off).
    pending_retry_seconds: float = 5.0
    #: On SIGTERM, how long in-flight requests may take to finish before they are
    #: cancelled; keep it under the orchestrator's grace period (k8s: 30 s).
    drain_seconds: float = 25.0
    #: Log level of the JSON logs (DEBUG, INFO, WARNING, ERROR).
    log_level: str = "INFO"
    #: Operation names shown as metric labels besides the trusted documents'
    #: (comma-separated); any other operation is counted as "other".
    metric_operation_names: str = ""

    def url_for(self, source: str) -> str | None:
        """The URL a source connects to: its own variable, else the shared one."""
        return getattr(self, f"{source}_database_url") or self.database_url

    @property
    def embedded(self) -> bool:
        """True when no database URL at all is set: we run PostgreSQL ourselves."""
        return all(self.url_for(source) is None for source in SOURCES)
