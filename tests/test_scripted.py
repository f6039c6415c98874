from __future__ import annotations

import json
from typing import Any

import pytest

from smallchain.llm.base import LLMError, LLMRequest
from smallchain.llm.scripted import ScriptedProvider
from smallchain.spec import LLMSpec

REPLIES: list[dict[str, Any]] = [
    {"agent": "assistant", "turn": 0, "when": r"add \((\d+) \+ (\d+)\)",
     "tool_calls": [{"name": "add", "arguments": {"a": r"\1", "b": r"\2"}},
                    {"name": "note", "arguments": {"text": r"sum of \1 and \2", "code": "007"}}]},
    {"agent": "assistant", "when": r"^(?P<n>\d+)$", "content": r"The result is \g<n>."},
    {"agent": "calculator_operator", "tool_calls": [{"name": "add", "arguments": '{"a": 1, "b": 2}'}]},
    {"when": "hello", "content": "hi"},
]


def provider(replies: list[dict[str, Any]] = REPLIES) -> ScriptedProvider:
    return ScriptedProvider(LLMSpec(name="fake", provider="scripted", replies=replies))


def request(agent: str, *messages: dict[str, Any]) -> LLMRequest:
    return LLMRequest(model=None, messages=list(messages), agent=agent)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_when_groups_fill_tool_call_arguments_as_numbers() -> None:
    response = provider().complete(
        request("assistant", {"role": "system", "content": "be useful"}, user("add (3 + 4) and (5 + 3)"))
    )
    calls = response.message.tool_calls
    assert calls is not None and response.message.content is None
    assert [c.id for c in calls] == ["call_0_0", "call_0_1"]
    assert calls[0].function.name == "add"
    assert json.loads(calls[0].function.arguments) == {"a": 3, "b": 4}
    # Text around a group stays text, and a literal that looks numeric is left alone.
    assert json.loads(calls[1].function.arguments) == {"text": "sum of 3 and 4", "code": "007"}
    assert response.raw["object"] == "chat.completion"
    assert response.raw["choices"][0]["finish_reason"] == "tool_calls"
    assert response.raw["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "add"


def test_when_matches_the_latest_tool_result_and_turn_counts_assistant_messages() -> None:
    assistant = {"role": "assistant", "tool_calls": [
        {"id": "call_0_0", "type": "function", "function": {"name": "add", "arguments": "{}"}}]}
    tool_result = {"role": "tool", "tool_call_id": "call_0_0", "content": "7"}
    response = provider().complete(request("assistant", user("add (3 + 4)"), assistant, tool_result))
    assert response.message.content == "The result is 7."
    assert response.message.tool_calls is None
    assert response.raw["choices"][0]["finish_reason"] == "stop"
    # turn 0 no longer applies, so the first entry is skipped even though its `when` would match.
    with pytest.raises(LLMError, match="turn 1"):
        provider().complete(request("assistant", user("add (3 + 4)"), assistant, user("add (1 + 2)")))


def test_agent_condition_and_json_string_arguments_pass_through() -> None:
    response = provider().complete(request("calculator_operator", user("anything")))
    assert response.message.tool_calls is not None
    assert response.message.tool_calls[0].function.arguments == '{"a": 1, "b": 2}'
    assert provider().complete(request("someone", user("well hello"))).message.content == "hi"


def test_json_string_arguments_are_templates_too() -> None:
    replies = [{"when": r"(\d+)", "tool_calls": [{"name": "t", "arguments": r'{"n": \1'}]}]
    response = provider(replies).complete(request("a", user("42")))
    # Invalid JSON is passed on as written, as a real LLM's would be, for the engine to report.
    assert response.message.tool_calls is not None
    assert response.message.tool_calls[0].function.arguments == '{"n": 42'


def test_no_matching_reply_names_agent_turn_and_message() -> None:
    with pytest.raises(LLMError) as err:
        provider().complete(request("writer", user("write a poem")))
    message = str(err.value)
    for part in ("'fake'", "'writer'", "turn 0", "'write a poem'", "add a reply to the llm's `replies`"):
        assert part in message


def test_missing_group_is_an_llm_error() -> None:
    replies = [{"when": "x", "content": r"\3"}]
    with pytest.raises(LLMError, match="groups of `when`"):
        provider(replies).complete(request("a", user("x")))


def test_usage_is_characters_divided_by_four() -> None:
    response = provider().complete(request("someone", user("hello" * 8)))
    assert response.usage.prompt_tokens == 10
    assert response.usage.completion_tokens == 0
    assert response.raw["usage"]["total_tokens"] == 10


def test_same_request_same_answer() -> None:
    req = request("assistant", user("add (3 + 4)"))
    first, second = provider().complete(req), provider().complete(req)
    assert first.message == second.message
    assert first.raw["id"] == second.raw["id"]


@pytest.mark.parametrize(("replies", "expected"), [
    ([{"agent": "a"}], r"replies\[0\]: a reply needs `content` and/or `tool_calls`"),
    ([{"content": "x", "turn": "first"}], r"replies\[0\]\.turn: Input should be a valid integer"),
    ([{"content": "x"}, {"content": "y", "when": "("}],
     r"replies\[1\]\.when: `when` is not a valid regular expression"),
    ([{"tool_calls": [{"arguments": {}}]}], r"replies\[0\]\.tool_calls\[0\]\.name: Field required"),
    ([{"content": "x", "colour": "red"}], r"replies\[0\]\.colour: Extra inputs are not permitted"),
    ([], r"has no `replies`"),
])
def test_invalid_replies_are_rejected_at_construction(replies: list[dict[str, Any]], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        provider(replies)
