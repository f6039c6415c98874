"""Runtime settings, read from the environment (prefix ``SMALLCHAIN_``) or passed explicitly."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///smallchain.db"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMALLCHAIN_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = DEFAULT_BROKER_URL
    # How long Redis waits before re-delivering an unacked message. It bounds crash-recovery
    # latency, and every countdown we schedule must stay below it (see docs on Redis ETAs).
    visibility_timeout: int = Field(default=3600, ge=1)
    # Delegation depth beyond which a sub-agent call fails instead of starting a child run.
    max_depth: int = Field(default=8, ge=0)
    # LLM turns per run before it fails, so a looping agent cannot spend without bound.
    max_steps: int = Field(default=50, ge=1)
    # Transient LLM failures (after the SDK's own retries) are retried by the task this many times.
    llm_task_retries: int = Field(default=3, ge=0)
    llm_retry_backoff: float = Field(default=5.0, ge=0)
    # A step whose state says "in flight" but which has not moved for this long is re-enqueued.
    sweep_stale_after: int = Field(default=300, ge=1)
    sweep_interval: int = Field(default=60, ge=1)
    tool_timeout: float = Field(default=60.0, gt=0)
    # API key for the approve/reject/respond endpoints of `smallchain serve`.
    api_key: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    # Where approval requests and human questions are POSTed (a tool's human.notify_url wins).
    notify_url: str | None = None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
