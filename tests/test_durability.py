"""Crashes: a worker SIGKILLed mid-step, and a broker that lost its queues. The run still finishes, once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Cluster, make_cluster
from tests.support.llm_server import FakeLLM, Reply, call, delay, text, tool_calls, tool_results, turn
from tests.support.services import flush_redis
from tests.support.workers import Workers

SLOW_ECHO = {"name": "slow_echo", "function": "tests.support.runtools:slow_echo"}
# Short, so a message held by a killed worker comes back within the test; longer than any
# step here takes, or a slow machine would see a live step redelivered too.
VISIBILITY = "8"


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def cluster(database_url: str, broker_url: str, fake_llm: FakeLLM, workers: Workers, tmp_path: Path) -> Cluster:
    c = make_cluster(database_url, broker_url, fake_llm, workers, tmp_path, visibility_timeout=10)
    c.extra_env["SMALLCHAIN_VISIBILITY_TIMEOUT"] = VISIBILITY
    return c


def two_turns(body: dict[str, Any]) -> Reply:
    if turn(body) == 0:
        return tool_calls(call("slow_echo", {"text": "slept", "seconds": 3}))
    return text("after " + tool_results(body)[0])


def test_worker_killed_during_a_tool_call(cluster: Cluster) -> None:
    cluster.llm.script(two_turns)
    cluster.apply([{"name": "a", "system_prompt": "a", "llm": "fake", "tools": ["slow_echo"]}], tools=[SLOW_ECHO])
    first = cluster.start_worker()
    run = cluster.sc.enqueue(agent="a", user_message="go")

    wait_until(lambda: len(cluster.executions("slow_echo")) == 1, what="the tool to start")
    first.kill()
    assert run.status == "Running"
    cluster.start_worker()

    run.wait(60)
    assert run.status == "Succeeded", run.error
    assert run.output == "after slept"
    # The committed turn 0 was not asked again; the tool ran again (at least once), its result went in once.
    assert [turn(r) for r in cluster.llm.requests] == [0, 1]
    assert [m["role"] for m in run.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert len(cluster.executions("slow_echo")) == 2
    [tool_call] = run.tool_calls
    assert tool_call.status == "succeeded" and tool_call.attempts == 2


def test_worker_killed_during_an_llm_call(cluster: Cluster) -> None:
    def script(body: dict[str, Any]) -> Reply:
        if turn(body) == 0:
            return tool_calls(call("add", {"a": 1, "b": 2}))
        return delay(3, text("three")) if len(cluster.llm.requests) <= 2 else text("three")

    cluster.llm.script(script)
    cluster.apply([{"name": "a", "system_prompt": "a", "llm": "fake", "tools": ["add"]}])
    first = cluster.start_worker()
    run = cluster.sc.enqueue(agent="a", user_message="go")

    wait_until(lambda: len(cluster.llm.requests) == 2, what="the second LLM call to be in flight")
    first.kill()
    cluster.start_worker()

    run.wait(60)
    assert run.status == "Succeeded" and run.output == "three"
    # Turn 0 committed before the crash and is never repeated; turn 1 had not committed and is.
    assert [turn(r) for r in cluster.llm.requests] == [0, 1, 1]
    assert [c["step"] for c in run.llm_calls] == [0, 1]
    assert [m["role"] for m in run.messages] == ["system", "user", "assistant", "tool", "assistant"]


def test_prefork_child_killed_requeues_at_once(cluster: Cluster) -> None:
    """task_reject_on_worker_lost: the pool child dies, the main process re-queues the message."""
    cluster.llm.script(two_turns)
    cluster.apply([{"name": "a", "system_prompt": "a", "llm": "fake", "tools": ["slow_echo"]}], tools=[SLOW_ECHO])
    cluster.start_worker(queues="llm,delegation")
    tools_worker = cluster.start_worker(queues="tools", pool="prefork", concurrency=1)
    run = cluster.sc.enqueue(agent="a", user_message="go")

    wait_until(lambda: len(cluster.executions("slow_echo")) == 1, what="the tool to start")
    import os
    import signal

    children = Path(f"/proc/{tools_worker.pid}/task/{tools_worker.pid}/children").read_text().split()
    assert children, "a prefork worker has a pool child"
    for child in children:
        os.kill(int(child), signal.SIGKILL)

    run.wait(60)
    assert run.status == "Succeeded" and run.output == "after slept"
    assert len(cluster.executions("slow_echo")) == 2
    assert [turn(r) for r in cluster.llm.requests] == [0, 1]


def test_sweeper_recovers_steps_lost_with_the_broker(cluster: Cluster) -> None:
    """Redis loses every queued message; the database says what is due, and the sweeper re-enqueues it."""
    cluster.llm.script(lambda body: text("recovered"))
    cluster.apply([{"name": "a", "system_prompt": "a", "llm": "fake"}])
    run = cluster.sc.enqueue(agent="a", user_message="go")  # queued, but no worker yet
    flush_redis(cluster.sc.settings.broker_url)
    cluster.start_worker()
    time.sleep(1.0)
    assert run.status == "Pending" and cluster.llm.requests == []

    fresh = cluster.sc.settings.model_copy(update={"sweep_stale_after": 1})
    from smallchain.engine import Engine

    steps = Engine(cluster.sc.db, fresh).due_steps()
    assert [(s.step, s.args) for s in steps] == [("llm_turn", (run.id, 0))]
    cluster.sc.dispatcher.dispatch(steps)

    run.wait(30)
    assert run.output == "recovered"
    assert len(cluster.llm.requests) == 1
    # Sweeping again finds nothing, and a duplicate of a committed step is a no-op.
    assert Engine(cluster.sc.db, fresh).due_steps() == []
    cluster.sc.dispatcher.dispatch(steps)
    time.sleep(1.0)
    assert len(cluster.llm.requests) == 1 and len(run.messages) == 3
