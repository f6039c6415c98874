"""smallchain: durable, distributed LLM agent runs on Celery."""

from smallchain.api import RunHandle, RunNotFound, RunTimeout, Smallchain
from smallchain.settings import Settings

__all__ = ["RunHandle", "RunNotFound", "RunTimeout", "Settings", "Smallchain"]
__version__ = "0.1.0"
