"""The LLM provider interface: one chat-completions request in, one assistant message out."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from smallchain.messages import AssistantMessage


class LLMRequest(BaseModel):
    """What is sent, in the OpenAI chat-completions shape; stored verbatim for clarity."""

    model: str | None
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    # Who is asking: lets deterministic providers choose replies; never sent to a real API.
    agent: str = ""

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": self.messages, **self.parameters}
        if self.tools:
            body["tools"] = self.tools
        return body


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LLMResponse(BaseModel):
    message: AssistantMessage
    usage: Usage = Field(default_factory=Usage)
    raw: dict[str, Any] = Field(default_factory=dict)


class LLMError(Exception):
    """The provider refused the request (e.g. a 400): retrying will not help; the run fails."""


class TransientLLMError(LLMError):
    """Rate limit, 5xx, timeout or connection failure that outlasted the provider's own retries."""


class LLMProvider(Protocol):
    def complete(self, request: LLMRequest) -> LLMResponse: ...
