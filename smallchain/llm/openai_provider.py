"""Any OpenAI-compatible chat-completions endpoint, through the official SDK.

The SDK already retries 408/409/429/5xx, timeouts and connection errors with exponential
backoff (``max_retries``); what still fails after that is classified for the caller.
"""

from __future__ import annotations

import os
from typing import Any

import openai

from smallchain.llm.base import LLMError, LLMRequest, LLMResponse, TransientLLMError, Usage
from smallchain.messages import AssistantMessage
from smallchain.spec import LLMSpec


class OpenAIProvider:
    def __init__(self, spec: LLMSpec) -> None:
        api_key = os.environ.get(spec.api_key_env)
        if not api_key:
            if spec.base_url or os.environ.get("OPENAI_BASE_URL"):
                # Local OpenAI-compatible servers usually ignore the key, but the SDK insists on one.
                api_key = "unused"
            else:
                raise LLMError(
                    f"llm {spec.name!r}: environment variable {spec.api_key_env} is not set "
                    "(set it, or set api_key_env / base_url on the llm)"
                )
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=spec.base_url or os.environ.get("OPENAI_BASE_URL") or None,
            max_retries=spec.max_retries,
            timeout=spec.timeout,
        )

    def complete(self, request: LLMRequest) -> LLMResponse:
        try:
            completion = self._client.chat.completions.create(**request.body())
        except (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
                openai.InternalServerError) as exc:
            raise TransientLLMError(_describe(exc)) from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500:
                raise TransientLLMError(_describe(exc)) from exc
            raise LLMError(_describe(exc)) from exc
        except openai.OpenAIError as exc:
            raise LLMError(str(exc)) from exc
        raw: dict[str, Any] = completion.model_dump(mode="json", exclude_unset=True)
        if not completion.choices:
            raise LLMError(f"the LLM returned no choices: {raw}")
        choice = completion.choices[0].message
        tool_calls = None
        if choice.tool_calls:
            tool_calls = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.function.name, "arguments": c.function.arguments or ""}}
                for c in choice.tool_calls if c.type == "function"
            ]
        message = AssistantMessage.model_validate({"content": choice.content, "tool_calls": tool_calls or None})
        usage = Usage()
        if completion.usage is not None:
            usage = Usage(prompt_tokens=completion.usage.prompt_tokens,
                          completion_tokens=completion.usage.completion_tokens)
        return LLMResponse(message=message, usage=usage, raw=raw)


def _describe(exc: openai.OpenAIError) -> str:
    if isinstance(exc, openai.APIStatusError):
        detail: Any = exc.body
        if isinstance(detail, dict) and isinstance(detail.get("error"), dict):
            detail = detail["error"].get("message", detail)
        return f"HTTP {exc.status_code} from the LLM provider: {detail or exc.message}"
    return f"{type(exc).__name__}: {exc}"
