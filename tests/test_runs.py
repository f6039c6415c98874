"""Agent runs end to end: real Celery workers on a private Redis, SQLite and PostgreSQL, and the
real openai SDK talking HTTP to a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smallchain.api import RunHandle
from tests.cluster import Cluster, make_cluster
from tests.support.llm_server import (
    FakeLLM,
    Reply,
    call,
    error,
    last_message,
    system_prompt,
    text,
    tool_calls,
    tool_results,
    turn,
)
from tests.support.workers import Workers

SLOW_ECHO = {"name": "slow_echo", "function": "tests.support.runtools:slow_echo"}
EXPLODE = {"name": "explode", "function": "tests.support.runtools:explode"}


@pytest.fixture
def cluster(database_url: str, broker_url: str, fake_llm: FakeLLM, workers: Workers,
            tmp_path: Path) -> Iterator[Cluster]:
    c = make_cluster(database_url, broker_url, fake_llm, workers, tmp_path)
    yield c
    c.sc.close()


def requests_of(llm: FakeLLM, prompt: str) -> list[dict[str, Any]]:
    return [r for r in llm.requests if system_prompt(r) == prompt]


def roles(run: RunHandle) -> list[str]:
    return [m["role"] for m in run.messages]


def test_single_turn_answer(cluster: Cluster) -> None:
    cluster.llm.script(lambda body: text("Paris."))
    cluster.apply([{"name": "geo", "system_prompt": "You know geography.", "llm": "fake"}])
    cluster.start_worker()

    run = cluster.sc.enqueue(agent="geo", user_message="Capital of France?").wait(30)

    assert run.status == "Succeeded"
    assert run.output == "Paris."
    assert run.messages == [
        {"role": "system", "content": "You know geography."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]
    assert len(cluster.llm.requests) == 1
    # Clarity: the stored request is exactly what reached the server.
    [llm_call] = run.llm_calls
    sent = cluster.llm.requests[0]
    assert llm_call["request"]["messages"] == sent["messages"]
    assert llm_call["request"]["model"] == sent["model"] == "fake-model"
    assert "tools" not in sent
    assert llm_call["prompt_tokens"] > 0 and llm_call["completion_tokens"] > 0


def test_several_rounds_of_tool_calls(cluster: Cluster) -> None:
    def script(body: dict[str, Any]) -> Reply:
        step = turn(body)
        if step == 0:
            return tool_calls(call("add", {"a": 2, "b": 3}))
        if step == 1:
            assert tool_results(body) == ["5"]
            return tool_calls(call("multiply", {"a": 5, "b": 4}))
        if step == 2:
            assert tool_results(body) == ["20"]
            return tool_calls(call("slow_echo", {"text": "twenty"}))
        return text(f"Done: {tool_results(body)[0]}")

    cluster.llm.script(script)
    cluster.apply([{"name": "calc", "system_prompt": "calc", "llm": "fake",
                    "tools": ["add", "multiply", "slow_echo"]}], tools=[SLOW_ECHO])
    cluster.start_worker()

    run = cluster.sc.enqueue(agent="calc", user_message="(2+3)*4").wait(30)

    assert run.status == "Succeeded", run.error
    assert run.output == "Done: twenty"
    assert len(cluster.llm.requests) == 4
    assert roles(run) == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant", "tool", "assistant"]
    assert [c.status for c in run.tool_calls] == ["succeeded"] * 3
    assert len(cluster.executions("slow_echo")) == 1
    # Every turn's stored request is exactly what the server received, window prefix included.
    assert [c["request"]["messages"] for c in run.llm_calls] == [r["messages"] for r in cluster.llm.requests]
    assert [c["request"]["tools"] for c in run.llm_calls] == [r["tools"] for r in cluster.llm.requests]
    # The tool definitions sent are derived from the function's signature and docstring.
    echo_def = next(t for t in cluster.llm.requests[0]["tools"] if t["function"]["name"] == "slow_echo")
    assert echo_def["function"]["description"] == "Wait, then return the text."
    assert echo_def["function"]["parameters"]["properties"]["text"] == {
        "type": "string", "description": "What to return."}


def test_parallel_tool_calls_resume_once_in_llm_order(cluster: Cluster) -> None:
    """The first call finishes last; results still follow the LLM's order, and the LLM runs once more."""

    def script(body: dict[str, Any]) -> Reply:
        if turn(body) == 0:
            return tool_calls(
                call("slow_echo", {"text": "first", "seconds": 1.5}, id="c-first"),
                call("slow_echo", {"text": "second", "seconds": 0.7}, id="c-second"),
                call("slow_echo", {"text": "third", "seconds": 0.0}, id="c-third"),
            )
        return text(" ".join(tool_results(body)))

    cluster.llm.script(script)
    cluster.apply([{"name": "par", "system_prompt": "par", "llm": "fake", "tools": ["slow_echo"]}],
                  tools=[SLOW_ECHO])
    cluster.start_worker(concurrency=8)

    run = cluster.sc.enqueue(agent="par", user_message="go").wait(30)

    assert run.status == "Succeeded", run.error
    assert run.output == "first second third"
    assert len(cluster.llm.requests) == 2
    tool_messages = [m for m in run.messages if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages] == [
        ("c-first", "first"), ("c-second", "second"), ("c-third", "third")]
    calls = run.tool_calls
    assert len(calls) == 3 and all(c.status == "succeeded" for c in calls)
    # They really ran concurrently: every call started before any finished.
    assert max(c.started_at for c in calls) < min(c.finished_at for c in calls)  # type: ignore[type-var]


def test_delegation_two_levels_with_parallel_children(cluster: Cluster) -> None:
    """manager -> 2 x lead (parallel) -> each 2 x worker (parallel): depth 2, seven runs."""

    def script(body: dict[str, Any]) -> Reply:
        who, step = system_prompt(body), turn(body)
        if who == "manager":
            if step == 0:
                return tool_calls(call("lead", {"message": "part A"}), call("lead", {"message": "part B"}))
            return text("manager: " + " | ".join(tool_results(body)))
        if who == "lead":
            part = last_message(body)["content"] if step == 0 else ""
            if step == 0:
                return tool_calls(call("worker", {"message": f"{part}.1"}), call("worker", {"message": f"{part}.2"}))
            return text("+".join(tool_results(body)))
        if who == "worker":
            return text(f"done {last_message(body)['content']}")
        raise AssertionError(who)

    cluster.llm.script(script)
    cluster.apply([
        {"name": "manager", "system_prompt": "manager", "llm": "fake", "tools": [{"agent": "lead"}]},
        {"name": "lead", "system_prompt": "lead", "llm": "fake", "description": "Leads a part.",
         "tools": [{"agent": "worker"}]},
        {"name": "worker", "system_prompt": "worker", "llm": "fake"},
    ])
    cluster.start_worker()

    run = cluster.sc.enqueue(agent="manager", user_message="build it").wait(60)

    assert run.status == "Succeeded", run.error
    assert run.output == "manager: done part A.1+done part A.2 | done part B.1+done part B.2"
    leads = run.children
    assert [c.status for c in leads] == ["Succeeded", "Succeeded"]
    assert sorted(c.depth for c in leads) == [1, 1]
    grandchildren = [g for lead in leads for g in lead.children]
    assert len(grandchildren) == 4 and {g.depth for g in grandchildren} == {2}
    assert all(g.row.root_run_id == run.id for g in grandchildren)
    # Exact LLM calls: manager 2, each lead 2, each worker 1.
    assert len(requests_of(cluster.llm, "manager")) == 2
    assert len(requests_of(cluster.llm, "lead")) == 4
    assert len(requests_of(cluster.llm, "worker")) == 4
    # The agent-tool is offered with its description and one `message` argument.
    lead_tool = cluster.llm.requests[0]["tools"][0]["function"]
    assert lead_tool["name"] == "lead" and lead_tool["description"] == "Leads a part."
    assert lead_tool["parameters"]["required"] == ["message"]


def test_failed_child_becomes_an_error_result_for_the_parent(cluster: Cluster) -> None:
    def script(body: dict[str, Any]) -> Reply:
        if system_prompt(body) == "child":
            return error(400, "child prompt rejected")
        if turn(body) == 0:
            return tool_calls(call("child", {"message": "try"}))
        return text("parent saw: " + tool_results(body)[0])

    cluster.llm.script(script)
    cluster.apply([
        {"name": "parent", "system_prompt": "parent", "llm": "fake", "tools": [{"agent": "child"}]},
        {"name": "child", "system_prompt": "child", "llm": "fake"},
    ])
    cluster.start_worker()

    run = cluster.sc.enqueue(agent="parent", user_message="go").wait(30)

    assert run.status == "Succeeded"
    [child] = run.children
    assert child.status == "Failed"
    assert "child prompt rejected" in (child.error or "")
    assert run.output is not None and run.output.startswith("parent saw: Error: agent child failed: LLM call failed")
    assert "child prompt rejected" in run.output


def test_bad_llm_output_becomes_tool_results(cluster: Cluster) -> None:
    """Unknown tool, non-JSON arguments, arguments off the schema, a raising tool: the LLM sees each."""

    def script(body: dict[str, Any]) -> Reply:
        if turn(body) == 0:
            return tool_calls(
                call("no_such_tool", {"x": 1}),
                call("add", "{not json"),
                call("add", {"a": "three", "b": 4}),
                call("slow_echo", {"wrong": "field"}),
                call("explode", {"reason": "testing"}),
                call("add", {"a": 1, "b": 2}),
            )
        return text("recovered")

    cluster.llm.script(script)
    cluster.apply([{"name": "messy", "system_prompt": "messy", "llm": "fake",
                    "tools": ["add", "slow_echo", "explode"]}], tools=[SLOW_ECHO, EXPLODE])
    cluster.start_worker()

    run = cluster.sc.enqueue(agent="messy", user_message="go").wait(30)

    assert run.status == "Succeeded"
    results = tool_results(cluster.llm.requests[1])
    assert len(results) == 6
    assert results[0].startswith("Error: there is no tool named 'no_such_tool'; the tools are: add, slow_echo, explode")
    assert results[1].startswith("Error: arguments are not valid JSON")
    assert results[2].startswith(
        "Error: arguments do not fit the tool's parameters: a: 'three' is not of type 'number'")
    assert "text: Field required" in results[3]
    assert "wrong: Extra inputs are not permitted" in results[3]
    assert results[4] == "Error: RuntimeError: kaboom: testing"
    assert results[5] == "3"
    # Only valid calls reach a worker.
    assert [e["tool"] for e in cluster.executions()] == ["explode"]
    assert [c.status for c in run.tool_calls] == ["failed"] * 5 + ["succeeded"]


def test_server_error_is_retried_then_succeeds(cluster: Cluster) -> None:
    served: list[int] = []

    def script(body: dict[str, Any]) -> Reply:
        served.append(1)
        return error(500, "overloaded") if len(served) == 1 else text("fine")

    cluster.llm.script(script)
    cluster.apply([{"name": "a", "system_prompt": "a", "llm": "fake"}])
    cluster.start_worker()

    run = cluster.sc.enqueue(agent="a", user_message="hi").wait(30)

    assert run.status == "Succeeded" and run.output == "fine"
    assert len(cluster.llm.requests) == 2
    assert len(run.llm_calls) == 1


def test_client_error_fails_the_run_with_the_providers_message(cluster: Cluster) -> None:
    cluster.llm.script(lambda body: error(400, "context length exceeded"))
    cluster.apply([{"name": "a", "system_prompt": "a", "llm": "fake"}])
    cluster.start_worker()

    run = cluster.sc.enqueue(agent="a", user_message="hi").wait(30)

    assert run.status == "Failed"
    assert "HTTP 400" in (run.error or "") and "context length exceeded" in (run.error or "")
    assert len(cluster.llm.requests) == 1  # a 4xx is not retried
    assert run.llm_calls[0]["error"] is not None


def test_transient_errors_exhausted_fail_the_run(database_url: str, broker_url: str, fake_llm: FakeLLM,
                                                workers: Workers, tmp_path: Path) -> None:
    cluster = make_cluster(database_url, broker_url, fake_llm, workers, tmp_path)
    cluster.llm.script(lambda body: error(503, "down for maintenance"))
    cluster.apply([{"name": "a", "system_prompt": "a", "llm": "fake"}])
    cluster.start_worker(SMALLCHAIN_LLM_TASK_RETRIES="1", SMALLCHAIN_LLM_RETRY_BACKOFF="0.2")

    run = cluster.sc.enqueue(agent="a", user_message="hi").wait(30)

    assert run.status == "Failed"
    assert "down for maintenance" in (run.error or "") and "gave up after retries" in (run.error or "")
    # SDK: 1 try + 1 retry, per task attempt; task: 1 + 1 retry.
    assert len(cluster.llm.requests) == 4


def test_max_steps_stops_a_looping_agent(cluster: Cluster) -> None:
    cluster.llm.script(lambda body: tool_calls(call("add", {"a": 1, "b": 1})))
    cluster.apply([{"name": "loop", "system_prompt": "loop", "llm": "fake", "tools": ["add"], "max_steps": 3}])
    cluster.start_worker()

    run = cluster.sc.enqueue(agent="loop", user_message="go").wait(30)

    assert run.status == "Failed"
    assert run.error == "the run reached its limit of 3 LLM turns (max_steps)"
    assert len(cluster.llm.requests) == 3
    assert roles(run)[-1] == "tool"  # the window stays a valid chat history


def test_enqueue_task_by_name_and_get_run(cluster: Cluster) -> None:
    cluster.llm.script(lambda body: text(f"echo: {last_message(body)['content']}"))
    cluster.sc.apply({
        "llms": [cluster.llm_spec()],
        "agents": [{"name": "echo", "system_prompt": "echo", "llm": "fake"}],
        "tasks": [{"name": "say", "agent": "echo", "user_message": "hello"}],
    })
    cluster.start_worker()

    run = cluster.sc.enqueue("say", name="greeting").wait(30)

    same = cluster.sc.get_run("greeting")
    assert same.id == run.id and same.output == "echo: hello"
    assert same.row.task_name == "say"
    assert json.loads(json.dumps(run.messages))[-1]["content"] == "echo: hello"


def test_delegation_beyond_max_depth_is_an_error_result(sqlite_url: str, fake_llm: FakeLLM) -> None:
    """a -> b is allowed at max_depth 1; b -> c would be depth 2, so b's call fails and b re-plans."""
    from smallchain import Settings, Smallchain

    def script(body: dict[str, Any]) -> Reply:
        who = system_prompt(body)
        if who == "c":
            raise AssertionError("c must never run")
        if turn(body) == 0:
            return tool_calls(call("b" if who == "a" else "c", {"message": "go deeper"}))
        return text(f"{who} got: {tool_results(body)[0]}")

    fake_llm.script(script)
    sc = Smallchain.embedded(settings=Settings(database_url=sqlite_url, max_depth=1))
    sc.apply({"llms": [{"name": "fake", "model": "m", "base_url": fake_llm.base_url}],
              "agents": [{"name": "a", "system_prompt": "a", "tools": [{"agent": "b"}]},
                         {"name": "b", "system_prompt": "b", "tools": [{"agent": "c"}]},
                         {"name": "c", "system_prompt": "c"}]})

    run = sc.enqueue(agent="a", user_message="start").wait(30)

    assert run.output == ("a got: b got: Error: cannot delegate to 'c': "
                          "the delegation depth limit (1) is reached")
    [b] = run.children
    assert b.depth == 1 and b.children == []
    assert len(fake_llm.requests) == 4
    sc.close()
