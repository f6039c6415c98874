"""smallchain: durable, distributed LLM agent runs on Celery."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smallchain.api import RunHandle, RunNotFound, RunTimeout, Smallchain
    from smallchain.settings import Settings

__all__ = ["RunHandle", "RunNotFound", "RunTimeout", "Settings", "Smallchain"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Imported on first use, so the CLI's --help does not pay for the engine, SQLAlchemy and the SDK.
    if name == "Settings":
        from smallchain.settings import Settings

        return Settings
    if name in __all__:
        from smallchain import api

        return getattr(api, name)
    raise AttributeError(f"module 'smallchain' has no attribute {name!r}")
