"""A deterministic stand-in for an LLM, for demos, tests and the quickstart without an API key.

An llm with ``provider: scripted`` answers from its ``replies``, the first entry whose
conditions all hold::

    replies:
      - agent: assistant          # the asking agent (optional)
        turn: 0                   # assistant messages already in the conversation (optional)
        when: 'add (\\d+) and (\\d+)'   # re.search on the latest user or tool message (optional)
        tool_calls:
          - name: add
            arguments: {a: '\\1', b: '\\2'}   # or a JSON string, passed on as written
      - content: 'The answer is \\1'

Groups matched by ``when`` fill ``\\1``/``\\g<name>`` in the content and in tool call arguments
(with ``when`` present, the texts are templates as for ``re.sub``: backslashes are escapes).
A dict value that was filled from a group and reads as a number becomes that number, so the
tool gets ``{"a": 3}``, not ``{"a": "3"}``.

Token usage is an estimate (characters // 4): nothing here has a real tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from smallchain.llm.base import LLMError, LLMRequest, LLMResponse, Usage
from smallchain.messages import AssistantMessage
from smallchain.spec import LLMSpec

_GROUP_REFERENCE = re.compile(r"\\(\d+|g<[^>]*>)")


class ScriptedToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class ScriptedReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str | None = None
    turn: int | None = Field(default=None, ge=0)
    when: str | None = None
    content: str | None = None
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)

    @field_validator("when")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"`when` is not a valid regular expression ({exc}): {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _says_something(self) -> ScriptedReply:
        if self.content is None and not self.tool_calls:
            raise ValueError("a reply needs `content` and/or `tool_calls`")
        return self


_REPLIES = TypeAdapter(list[ScriptedReply])


def parse_replies(replies: list[dict[str, Any]]) -> list[ScriptedReply]:
    """The replies of a scripted llm, or ValueError saying which entry is wrong and how."""
    try:
        return _REPLIES.validate_python(replies)
    except ValidationError as exc:
        problems = [
            f"replies{_path(err['loc'])}: {err['msg'].removeprefix('Value error, ')}" for err in exc.errors()
        ]
        raise ValueError("; ".join(problems)) from None


def _path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


class ScriptedProvider:
    def __init__(self, spec: LLMSpec) -> None:
        self._spec = spec
        try:
            self._replies = parse_replies(spec.replies)
        except ValueError as exc:
            raise ValueError(f"scripted llm {spec.name!r}: {exc}") from None
        if not self._replies:
            raise ValueError(f"scripted llm {spec.name!r} has no `replies`; it could never answer")

    def complete(self, request: LLMRequest) -> LLMResponse:
        turn = sum(1 for m in request.messages if m.get("role") == "assistant")
        last = _last_input(request.messages)
        for reply in self._replies:
            if reply.agent is not None and reply.agent != request.agent:
                continue
            if reply.turn is not None and reply.turn != turn:
                continue
            match = re.search(reply.when, last) if reply.when is not None else None
            if reply.when is not None and match is None:
                continue
            try:
                message = _answer(reply, match, turn)
            except (re.error, IndexError) as exc:
                raise LLMError(
                    f"scripted llm {self._spec.name!r}: cannot fill in the reply for agent {request.agent!r} "
                    f"at turn {turn} from the groups of `when` {reply.when!r}: {exc}"
                ) from exc
            usage = _usage(request, message)
            return LLMResponse(message=message, usage=usage, raw=self._raw(request, message, usage))
        shown = last if len(last) <= 200 else last[:200] + "..."
        raise LLMError(
            f"scripted llm {self._spec.name!r} has no reply for agent {request.agent!r} at turn {turn} "
            f"(last message: {shown!r}); add a reply to the llm's `replies`"
        )

    def _raw(self, request: LLMRequest, message: AssistantMessage, usage: Usage) -> dict[str, Any]:
        conversation = json.dumps(request.messages, sort_keys=True, default=str)
        digest = hashlib.sha256(conversation.encode()).hexdigest()
        return {
            "id": f"chatcmpl-scripted-{digest[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model or self._spec.model or "scripted",
            "choices": [{
                "index": 0,
                "message": message.model_dump(exclude_none=True),
                "finish_reason": "tool_calls" if message.tool_calls else "stop",
            }],
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.prompt_tokens + usage.completion_tokens},
        }


def _last_input(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") != "assistant":
            return _text(message.get("content"))
    return ""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only the text ones can be matched
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _answer(reply: ScriptedReply, match: re.Match[str] | None, turn: int) -> AssistantMessage:
    def fill(text: str) -> str:
        return match.expand(text) if match is not None else text

    calls = []
    for i, call in enumerate(reply.tool_calls):
        if isinstance(call.arguments, str):
            arguments = fill(call.arguments)
        else:
            arguments = json.dumps(_fill_values(call.arguments, match))
        calls.append({"id": f"call_{turn}_{i}", "type": "function",
                      "function": {"name": call.name, "arguments": arguments}})
    content = fill(reply.content) if reply.content is not None else None
    return AssistantMessage.model_validate({"content": content, "tool_calls": calls or None})


def _fill_values(value: Any, match: re.Match[str] | None) -> Any:
    if isinstance(value, dict):
        return {k: _fill_values(v, match) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_values(v, match) for v in value]
    if isinstance(value, str) and match is not None:
        filled = match.expand(value)
        # Only text taken from the user's message is retyped; a literal "007" stays a string.
        return _as_number(filled) if _GROUP_REFERENCE.search(value) else filled
    return value


def _as_number(text: str) -> Any:
    # JSON's number grammar: "3", "-2.5", "1e3" yes; "007", "NaN", " 3" stay text.
    if text != text.strip():
        return text
    try:
        number = json.loads(text)
    except ValueError:
        return text
    if isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number):
        return number
    return text


def _usage(request: LLMRequest, message: AssistantMessage) -> Usage:
    prompt = sum(_message_chars(m) for m in request.messages)
    return Usage(prompt_tokens=prompt // 4, completion_tokens=_message_chars(message.model_dump()) // 4)


def _message_chars(message: dict[str, Any]) -> int:
    chars = len(_text(message.get("content")))
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        chars += len(function.get("name", "")) + len(function.get("arguments", ""))
    return chars
