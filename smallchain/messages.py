"""Typed chat messages: the context window that is a run's whole state.

They serialize to the OpenAI chat-completions format, which is also how they are stored,
so what the store holds is exactly what the LLM is sent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SystemMessage(_Message):
    role: Literal["system"] = "system"
    content: str


class UserMessage(_Message):
    role: Literal["user"] = "user"
    content: str


class FunctionCall(_Message):
    name: str
    # Raw text from the LLM: it may not even be JSON, and that is reported back, not repaired.
    arguments: str


class ToolCallRequest(_Message):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class AssistantMessage(_Message):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCallRequest] | None = None


class ToolMessage(_Message):
    role: Literal["tool"] = "tool"
    tool_call_id: str
    content: str


ChatMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage
Message = Annotated[ChatMessage, Field(discriminator="role")]
