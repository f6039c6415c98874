"""The scripted LLM server, exercised through the real openai SDK."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from tests.support.llm_server import (
    FakeLLM,
    Reply,
    call,
    delay,
    error,
    hang_up,
    in_order,
    last_message,
    system_prompt,
    text,
    tool_calls,
    tool_results,
    turn,
)


def client(llm: FakeLLM, timeout: float = 10.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="x", max_retries=0, timeout=timeout)


def ask(llm: FakeLLM, content: str = "hi", system: str = "You are A.") -> Any:
    return client(llm).chat.completions.create(
        model="m",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": content}],
    )


def test_text_reply(fake_llm: FakeLLM) -> None:
    fake_llm.script(lambda body: text(f"echo: {last_message(body)['content']}"))

    completion = ask(fake_llm, "hello")

    assert completion.object == "chat.completion"
    assert completion.model == "m"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "echo: hello"
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 5)
    assert completion.usage.total_tokens == 15
    assert fake_llm.requests[0]["messages"][1] == {"role": "user", "content": "hello"}


def test_tool_call_reply_and_unique_ids(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        lambda body: tool_calls(call("search", {"q": "x"}), call("raw", '{"broken'), call("fixed", id="mine"))
    )

    first = ask(fake_llm).choices[0]
    second = ask(fake_llm).choices[0]

    assert first.finish_reason == "tool_calls"
    assert first.message.content is None
    calls = first.message.tool_calls
    assert calls is not None
    assert [c.type for c in calls] == ["function"] * 3
    fns = [c.function for c in calls]
    assert [(f.name, f.arguments) for f in fns] == [
        ("search", '{"q": "x"}'),
        ("raw", '{"broken'),
        ("fixed", "{}"),
    ]
    assert json.loads(fns[0].arguments) == {"q": "x"}
    assert calls[2].id == "mine"
    assert second.message.tool_calls is not None
    ids = [c.id for c in calls[:2]] + [c.id for c in second.message.tool_calls[:2]]
    assert len(set(ids)) == 4
    assert all(i.startswith("call_") for i in ids)


def test_server_error_raises_internal_server_error(fake_llm: FakeLLM) -> None:
    fake_llm.script(lambda body: error(500, "boom"))

    with pytest.raises(openai.InternalServerError) as excinfo:
        ask(fake_llm)

    assert excinfo.value.status_code == 500
    assert isinstance(excinfo.value.body, dict)
    assert excinfo.value.body["message"] == "boom"


def test_bad_request_carries_our_message(fake_llm: FakeLLM) -> None:
    fake_llm.script(lambda body: error(400, "context too long", code="context_length_exceeded"))

    with pytest.raises(openai.BadRequestError) as excinfo:
        ask(fake_llm)

    assert excinfo.value.status_code == 400
    assert "context too long" in str(excinfo.value)
    assert excinfo.value.code == "context_length_exceeded"
    assert excinfo.value.type == "invalid_request_error"


def test_rate_limit_with_retry_after_header(fake_llm: FakeLLM) -> None:
    fake_llm.script(lambda body: error(429, "slow down", headers={"retry-after": "7"}))

    with pytest.raises(openai.RateLimitError) as excinfo:
        ask(fake_llm)

    assert excinfo.value.response.headers["retry-after"] == "7"


def test_handler_decides_on_conversation(fake_llm: FakeLLM) -> None:
    def agent(body: dict[str, Any]) -> Reply:
        if turn(body) == 0:
            return tool_calls(call("lookup", {"k": 1}, id="c1"))
        return text("result was " + ",".join(tool_results(body)))

    fake_llm.script(agent)
    c = client(fake_llm)
    messages: list[Any] = [{"role": "system", "content": "S"}, {"role": "user", "content": "go"}]
    first = c.chat.completions.create(model="m", messages=messages).choices[0].message
    messages.append(first.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": "c1", "content": "42"})
    second = c.chat.completions.create(model="m", messages=messages).choices[0].message

    assert second.content == "result was 42"
    assert [turn(b) for b in fake_llm.requests] == [0, 1]
    assert system_prompt(fake_llm.requests[1]) == "S"
    assert fake_llm.counts("S") == 2
    assert fake_llm.counts("other") == 0


def test_delay_and_in_order(fake_llm: FakeLLM) -> None:
    fake_llm.script(in_order(delay(0.3, text("slow")), text("fast")))

    started = time.monotonic()
    assert ask(fake_llm).choices[0].message.content == "slow"
    assert time.monotonic() - started >= 0.3
    assert ask(fake_llm).choices[0].message.content == "fast"


def test_hang_up_is_a_connection_error(fake_llm: FakeLLM) -> None:
    fake_llm.script(lambda body: hang_up())

    with pytest.raises(openai.APIConnectionError):
        ask(fake_llm)


def test_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.script(lambda body: delay(5, text("late")))

    with pytest.raises(openai.APITimeoutError):
        client(fake_llm, timeout=0.3).chat.completions.create(model="m", messages=[])


def test_other_routes_are_404(fake_llm: FakeLLM) -> None:
    assert httpx.get(fake_llm.base_url + "/models").status_code == 404
    response = httpx.post(fake_llm.base_url + "/embeddings", json={})
    assert response.status_code == 404
    assert "error" in response.json()
    assert fake_llm.requests == []


def test_stop_and_restart_on_same_port() -> None:
    with FakeLLM(lambda body: text("up")) as llm:
        c = client(llm)
        url = llm.base_url
        assert c.chat.completions.create(model="m", messages=[]).choices[0].message.content == "up"
        llm.stop()
        # The SDK's pooled keep-alive connection must not reach the stopped server either.
        with pytest.raises(openai.APIConnectionError):
            c.chat.completions.create(model="m", messages=[])
        llm.start()
        assert llm.base_url == url
        assert c.chat.completions.create(model="m", messages=[]).choices[0].message.content == "up"
        assert len(llm.requests) == 2
