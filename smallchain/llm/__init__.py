"""LLM providers, chosen by an llm's ``provider`` field."""

from __future__ import annotations

import threading

from smallchain.llm.base import LLMError, LLMProvider, LLMRequest, LLMResponse, TransientLLMError, Usage
from smallchain.spec import LLMSpec

__all__ = ["LLMError", "LLMProvider", "LLMRequest", "LLMResponse", "TransientLLMError", "Usage", "get_provider"]

_cache: dict[str, LLMProvider] = {}
_lock = threading.Lock()


def get_provider(spec: LLMSpec) -> LLMProvider:
    """One provider per distinct spec per process, so HTTP connections are pooled across runs."""
    key = spec.model_dump_json()
    with _lock:
        provider = _cache.get(key)
        if provider is None:
            if spec.provider == "scripted":
                from smallchain.llm.scripted import ScriptedProvider

                provider = ScriptedProvider(spec)
            else:
                from smallchain.llm.openai_provider import OpenAIProvider

                provider = OpenAIProvider(spec)
            _cache[key] = provider
        return provider
