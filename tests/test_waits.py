"""Async tools: approvals, human answers, external callbacks, timeouts, notifications and steering.

The end-to-end test uses real Celery workers on the private Redis, the CLI as a subprocess and the
HTTP service on a real uvicorn; the others run the same engine steps in-process (InProcessDispatcher)
against the fake OpenAI-compatible server and a real database, SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from smallchain import status as st
from smallchain.api import RunHandle, RunNotFound
from smallchain.engine import webhook
from smallchain.engine.timers import format_duration
from smallchain.server import create_app
from smallchain.store.schema import InboxRow, ToolCallRow
from smallchain.waits import CallNotFound, CallStateError, RunStateError
from tests.cluster import make_cluster
from tests.support.hooks import Local, Received, Receiver, ServerThread, make_local, wait_until
from tests.support.llm_server import (
    FakeLLM,
    Reply,
    call,
    delay,
    last_message,
    text,
    tool_calls,
    tool_results,
    turn,
)
from tests.support.runtools import ledger_entries
from tests.support.services import REPO_ROOT, flush_redis, free_port, subprocess_env
from tests.support.workers import Workers

Call = st.Call
API_KEY = "operator-key"
QUESTION = {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}
DEPLOY = {"name": "deploy", "function": "tests.support.runtools:slow_echo", "requires_approval": True}
ASK_HUMAN = {"name": "ask_human", "description": "Ask the operator a question.", "human": {},
             "parameters": QUESTION}


def webhook_tool(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "lookup", "description": "Look a key up in the inventory.",
            "executor": {"webhook": {"url": url, "headers": {"X-Hook-Secret": "s3cret"}}},
            "parameters": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
            **extra}


def calls_of(run: RunHandle) -> dict[str, Any]:
    return {c.name: c for c in run.tool_calls}


def cli_argv(*args: str) -> list[str]:
    """The installed ``smallchain`` command, next to this interpreter."""
    return [str(Path(sys.executable).parent / "smallchain"), *args]


# --- end to end: workers, CLI, HTTP --------------------------------------------------------------


def test_approval_question_and_callback_in_parallel_across_a_worker_restart(
    database_url: str, broker_url: str, fake_llm: FakeLLM, workers: Workers, tmp_path: Path
) -> None:
    hook = Receiver().start()
    public_url = f"http://127.0.0.1:{free_port()}"
    cluster = make_cluster(database_url, broker_url, fake_llm, workers, tmp_path,
                           public_url=public_url, api_key=API_KEY)
    cluster.extra_env.update(SMALLCHAIN_PUBLIC_URL=public_url)
    server = ServerThread(create_app(cluster.sc), port=int(public_url.rsplit(":", 1)[1])).start()
    try:
        def script(body: dict[str, Any]) -> Reply:
            if turn(body) == 0:
                return tool_calls(call("deploy", {"text": "v2"}), call("ask_human", {"question": "Which region?"}),
                                  call("lookup", {"key": "k1"}))
            return text("done: " + " | ".join(tool_results(body)))

        fake_llm.script(script)
        cluster.apply([{"name": "ops", "system_prompt": "You operate.", "llm": "fake",
                        "tools": ["deploy", "ask_human", "lookup"]}],
                      [DEPLOY, ASK_HUMAN, webhook_tool(hook.url + "/hook")])
        first = cluster.start_worker()
        run = cluster.sc.enqueue(agent="ops", user_message="Ship v2")

        [posted] = hook.wait_for(1)
        wait_until(lambda: [c.status for c in run.tool_calls]
                   == [Call.AWAITING_APPROVAL, Call.AWAITING_HUMAN, Call.AWAITING_CALLBACK], what="three waits")
        assert run.status == st.WAITING
        calls = calls_of(run)

        # What the external system was sent; only the token's hash is stored.
        assert posted.path == "/hook"
        assert posted.headers["x-hook-secret"] == "s3cret"
        token = posted.body.pop("token")
        assert posted.body == {
            "call_id": calls["lookup"].id, "run_id": run.id, "tool": "lookup", "arguments": {"key": "k1"},
            "callback_url": f"{public_url}/v1/toolcalls/{calls['lookup'].id}/result",
        }
        with cluster.sc.db.transaction() as session:
            row = session.get(ToolCallRow, calls["lookup"].id)
            assert row is not None and row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert {w.id for w in cluster.sc.waiting()} == {c.id for c in calls.values()}

        # Nothing needs a worker while the run waits: stop them all and lose the broker's contents.
        first.stop()
        flush_redis(broker_url)
        cluster.start_worker()

        # Approve through the CLI.
        approved = subprocess.run(cli_argv("approve", calls["deploy"].id), env=subprocess_env(cluster.env),
                                  cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert approved.returncode == 0, approved.stderr
        assert calls["deploy"].id in approved.stdout
        wait_until(lambda: calls_of(run)["deploy"].status == Call.SUCCEEDED, what="the approved tool to run")
        assert run.status == st.WAITING
        twice = subprocess.run(cli_argv("approve", calls["deploy"].id), env=subprocess_env(cluster.env),
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert twice.returncode == 1
        assert twice.stderr.strip().splitlines() == [
            f"error: tool call {calls['deploy'].id} is succeeded (it is already complete), not awaiting approval"]

        # Answer the question through the HTTP API.
        answered = httpx.post(f"{public_url}/v1/toolcalls/{calls['ask_human'].id}/respond",
                              json={"text": "eu-west-1"}, headers={"Authorization": f"Bearer {API_KEY}"})
        assert answered.status_code == 200, answered.text
        assert run.status == st.WAITING
        assert len(fake_llm.requests) == 1

        # The external system answers through its callback URL with its token.
        done = httpx.post(posted.body["callback_url"], json={"result": "k1=V1"},
                          headers={"Authorization": f"Bearer {token}"})
        assert done.status_code == 200, done.text
        assert done.json() == {"id": calls["lookup"].id, "status": Call.SUCCEEDED}

        run.wait(60)
        assert run.status == st.SUCCEEDED
        assert run.output == "done: v2 | eu-west-1 | k1=V1"
        # One LLM call per turn; the tool results in the LLM's order, whatever order they came in.
        assert len(fake_llm.requests) == 2
        assert tool_results(fake_llm.requests[1]) == ["v2", "eu-west-1", "k1=V1"]
        assert [e["text"] for e in ledger_entries(cluster.ledger)] == ["v2"]

        # A second completion changes nothing and resumes nothing.
        again = httpx.post(posted.body["callback_url"], json={"result": "other"},
                           headers={"X-Smallchain-Token": token})
        assert again.status_code == 409
        assert "succeeded" in again.json()["detail"]
        time.sleep(1.0)
        assert len(fake_llm.requests) == 2
        assert len(run.llm_calls) == 2
        assert cluster.sc.waiting() == []
    finally:
        server.stop()
        hook.stop()
        cluster.sc.close()


# --- in-process: the same steps, without a broker --------------------------------------------------


@pytest.fixture
def local(database_url: str, fake_llm: FakeLLM, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Local]:
    monkeypatch.setenv("SMALLCHAIN_TEST_LEDGER", str(tmp_path / "ledger.jsonl"))
    env = make_local(database_url, fake_llm, tmp_path)
    yield env
    env.close()


def first_turn_then_echo(*calls: Any) -> Any:
    def script(body: dict[str, Any]) -> Reply:
        if turn(body) == 0:
            return tool_calls(*calls)
        return text("results: " + " | ".join(tool_results(body)))
    return script


def test_rejection_feeds_the_reason_to_the_llm(local: Local) -> None:
    local.llm.script(first_turn_then_echo(call("deploy", {"text": "v3"})))
    local.apply([{"name": "ops", "llm": "fake", "tools": ["deploy"]}], [DEPLOY])
    run = local.start("ops", "Ship v3")
    deploy = calls_of(run)["deploy"]
    assert (deploy.status, run.status) == (Call.AWAITING_APPROVAL, st.WAITING)

    local.sc.reject(deploy.id, "not on a Friday")
    local.idle()

    assert run.status == st.SUCCEEDED
    assert tool_results(local.llm.requests[1]) == ["Rejected: not on a Friday"]
    assert calls_of(run)["deploy"].status == Call.REJECTED
    assert ledger_entries(local.tmp / "ledger.jsonl") == []  # a rejected tool never runs
    with pytest.raises(CallStateError, match="rejected"):
        local.sc.approve(deploy.id)


def test_rejected_prompt_is_overridable_per_agent(local: Local) -> None:
    local.llm.script(first_turn_then_echo(call("deploy", {"text": "v3"})))
    local.apply([{"name": "ops", "llm": "fake", "tools": ["deploy"],
                  "prompts": {"rejected": "The operator said no ({reason})."}}], [DEPLOY])
    run = local.start("ops", "Ship v3")
    local.sc.reject(calls_of(run)["deploy"].id, "freeze")
    local.idle()
    assert tool_results(local.llm.requests[1]) == ["The operator said no (freeze)."]


def test_answers_in_the_wrong_state_or_for_unknown_calls_are_refused(local: Local) -> None:
    local.llm.script(first_turn_then_echo(call("deploy", {"text": "v1"}), call("ask_human", {"question": "ok?"})))
    local.apply([{"name": "ops", "llm": "fake", "tools": ["deploy", "ask_human"]}], [DEPLOY, ASK_HUMAN])
    run = local.start("ops", "go")
    calls = calls_of(run)

    assert local.sc.approve(calls["deploy"].id) == Call.PENDING
    local.idle()
    with pytest.raises(CallStateError, match="is succeeded .*not awaiting approval"):
        local.sc.approve(calls["deploy"].id)
    with pytest.raises(CallStateError, match="awaiting_human"):
        local.sc.approve(calls["ask_human"].id)
    with pytest.raises(CallStateError, match="awaiting_human"):
        local.sc.reject(calls["ask_human"].id, "no")
    with pytest.raises(CallStateError, match="succeeded"):
        local.sc.respond(calls["deploy"].id, "text")
    with pytest.raises(CallNotFound):
        local.sc.approve("no-such-call")
    with pytest.raises(LookupError):
        local.sc.respond("no-such-call", "x")
    with pytest.raises(RunNotFound):
        local.sc.send("no-such-run", "hello")
    assert len(local.llm.requests) == 1  # nothing above resumed the run

    local.sc.respond(calls["ask_human"].id, "yes")
    local.idle()
    assert run.status == st.SUCCEEDED
    assert tool_results(local.llm.requests[1]) == ["v1", "yes"]
    assert len(ledger_entries(local.tmp / "ledger.jsonl")) == 1


def test_human_tool_that_requires_approval_waits_for_both(local: Local) -> None:
    guarded = {**ASK_HUMAN, "requires_approval": True}
    local.llm.script(first_turn_then_echo(call("ask_human", {"question": "Delete the bucket?"})))
    local.apply([{"name": "ops", "llm": "fake", "tools": ["ask_human"]}], [guarded])
    run = local.start("ops", "tidy up")
    human = calls_of(run)["ask_human"]
    assert human.status == Call.AWAITING_APPROVAL

    assert local.sc.approve(human.id) == Call.AWAITING_HUMAN
    local.idle()
    assert run.status == st.WAITING and len(local.llm.requests) == 1
    local.sc.respond(human.id, "keep it")
    local.idle()
    assert tool_results(local.llm.requests[1]) == ["keep it"]


def test_trusted_completion_through_the_python_api(local: Local) -> None:
    hook = Receiver().start()
    try:
        local.llm.script(first_turn_then_echo(call("lookup", {"key": "a"}), call("ask_human", {"question": "?"})))
        local.apply([{"name": "ops", "llm": "fake", "tools": ["lookup", "ask_human"]}],
                    [webhook_tool(hook.url), ASK_HUMAN])
        run = local.start("ops", "go")
        calls = calls_of(run)
        assert calls["lookup"].status == Call.AWAITING_CALLBACK

        assert local.sc.complete_tool_call(calls["lookup"].id, error="inventory offline") == Call.FAILED
        with pytest.raises(CallStateError):
            local.sc.complete_tool_call(calls["lookup"].id, result="late")
        with pytest.raises(ValueError, match="exactly one"):
            local.sc.complete_tool_call(calls["ask_human"].id, result="x", error="y")
        with pytest.raises(PermissionError):  # a token that is not the call's
            local.sc.complete_tool_call(calls["ask_human"].id, result="x", token="guess")
        local.sc.complete_tool_call(calls["ask_human"].id, result="operator's answer")
        local.idle()
        assert tool_results(local.llm.requests[1]) == ["Error: inventory offline", "operator's answer"]
    finally:
        hook.stop()


def test_callback_that_arrives_before_the_post_is_answered(local: Local) -> None:
    # Some systems call back from inside their webhook handler: the call is still `running` then.
    def answer_at_once(item: Received) -> None:
        outcome = local.sc.complete_tool_call(item.body["call_id"], result="fast", token=item.body["token"])
        assert outcome == Call.SUCCEEDED

    hook = Receiver(on_post=answer_at_once).start()
    try:
        local.llm.script(first_turn_then_echo(call("lookup", {"key": "a"})))
        local.apply([{"name": "ops", "llm": "fake", "tools": ["lookup"]}], [webhook_tool(hook.url)])
        run = local.start("ops", "go")
        run.wait(30)
        assert not hook.errors, hook.errors
        assert run.status == st.SUCCEEDED
        assert calls_of(run)["lookup"].status == Call.SUCCEEDED
        assert tool_results(local.llm.requests[1]) == ["fast"]
    finally:
        hook.stop()


def test_webhook_post_is_retried_then_fails_the_call(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook, "BACKOFF", 0.01)
    flaky = Receiver(statuses=[503, 502]).start()  # two failures, then 200
    broken = Receiver(statuses=[500] * webhook.ATTEMPTS).start()
    try:
        local.llm.script(first_turn_then_echo(call("lookup", {"key": "a"}), call("broken", {"key": "b"})))
        local.apply([{"name": "ops", "llm": "fake", "tools": ["lookup", "broken"]}],
                    [webhook_tool(flaky.url), {**webhook_tool(broken.url), "name": "broken"}])
        run = local.start("ops", "go")
        calls = calls_of(run)
        assert len(flaky.received) == 3 and calls["lookup"].status == Call.AWAITING_CALLBACK
        # The three attempts carried the same call (and token).
        assert len({json.dumps(r.body, sort_keys=True) for r in flaky.received}) == 1
        assert len(broken.received) == webhook.ATTEMPTS
        assert calls["broken"].status == Call.FAILED
        assert f"failed after {webhook.ATTEMPTS} attempts: HTTP 500" in (calls["broken"].error or "")
        assert run.status == st.WAITING and len(local.llm.requests) == 1
    finally:
        flaky.stop()
        broken.stop()


def test_webhook_refused_with_4xx_is_not_retried(local: Local) -> None:
    refused = Receiver(statuses=[404]).start()
    try:
        local.llm.script(first_turn_then_echo(call("lookup", {"key": "a"})))
        local.apply([{"name": "ops", "llm": "fake", "tools": ["lookup"]}], [webhook_tool(refused.url)])
        run = local.start("ops", "go")
        assert run.status == st.SUCCEEDED
        assert len(refused.received) == 1
        [result] = tool_results(local.llm.requests[1])
        assert result.startswith("Error: POST ") and "was refused: HTTP 404" in result
    finally:
        refused.stop()


def test_timeout_of_a_waiting_call_fires_from_the_sweep(local: Local) -> None:
    hook = Receiver().start()
    try:
        local.llm.script(first_turn_then_echo(call("ask_human", {"question": "Quick?"}), call("lookup", {"key": "k"}),
                                              call("deploy", {"text": "v9"})))
        local.apply([{"name": "ops", "llm": "fake", "tools": ["ask_human", "lookup", "deploy"]}],
                    [{**ASK_HUMAN, "timeout": "1s"}, webhook_tool(hook.url, timeout="2d"), DEPLOY])
        run = local.start("ops", "go")
        calls = calls_of(run)
        waiting = {w.tool: w for w in local.sc.waiting()}
        assert waiting["ask_human"].timeout_at is not None
        assert waiting["lookup"].timeout_at is not None
        assert waiting["deploy"].timeout_at is None  # no timeout: it waits for ever

        local.sc.sweep()  # not due yet
        local.idle()
        assert calls_of(run)["ask_human"].status == Call.AWAITING_HUMAN
        time.sleep(1.2)
        local.sc.sweep()
        local.idle()
        assert calls_of(run)["ask_human"].status == Call.TIMED_OUT
        assert calls_of(run)["lookup"].status == Call.AWAITING_CALLBACK  # two days left
        assert run.status == st.WAITING

        local.sc.reject(calls["deploy"].id, "no")
        local.sc.complete_tool_call(calls["lookup"].id, result="found")
        local.idle()
        assert run.status == st.SUCCEEDED
        assert tool_results(local.llm.requests[1]) == [
            "Error: no result within 1s; the call timed out", "found", "Rejected: no"]
        with pytest.raises(CallStateError, match="timed_out"):
            local.sc.respond(calls["ask_human"].id, "too late")
    finally:
        hook.stop()


def test_timeout_resumes_the_run_from_sweep(local: Local) -> None:
    local.llm.script(first_turn_then_echo(call("ask_human", {"question": "Quick?"})))
    local.apply([{"name": "ops", "llm": "fake", "tools": ["ask_human"],
                  "prompts": {"timed_out": "nobody answered within {timeout}"}}],
                [{**ASK_HUMAN, "timeout": 1}])
    run = local.start("ops", "go")
    time.sleep(1.2)
    assert local.sc.sweep() == 1
    local.idle()
    assert run.status == st.SUCCEEDED
    assert tool_results(local.llm.requests[1]) == ["nobody answered within 1s"]
    assert len(local.llm.requests) == 2


def test_durations_read_as_written() -> None:
    assert [format_duration(s) for s in (1, 30, 90, 3600, 172800, 604800, 1.5)] == [
        "1s", "30s", "90s", "1h", "2d", "1w", "1.5s"]


# --- notifications ---------------------------------------------------------------------------------


def test_approval_requests_and_questions_are_announced(database_url: str, fake_llm: FakeLLM,
                                                       tmp_path: Path) -> None:
    settings_hook, tool_hook = Receiver().start(), Receiver().start()
    local = make_local(database_url, fake_llm, tmp_path, notify_url=settings_hook.url + "/all",
                       public_url="https://sc.example.com")
    try:
        local.llm.script(first_turn_then_echo(call("deploy", {"text": "v5"}),
                                              call("ask_human", {"question": "Which region?"})))
        human = {**ASK_HUMAN, "human": {"notify_url": tool_hook.url + "/ops"}, "requires_approval": True}
        local.apply([{"name": "ops", "llm": "fake", "tools": ["deploy", "ask_human"]}], [DEPLOY, human])
        run = local.start("ops", "go")
        calls = calls_of(run)

        [approval] = settings_hook.received
        assert approval.path == "/all"
        assert approval.body["kind"] == "approval"
        assert {k: approval.body[k] for k in ("call_id", "run_id", "agent", "tool", "arguments")} == {
            "call_id": calls["deploy"].id, "run_id": run.id, "agent": "ops", "tool": "deploy",
            "arguments": {"text": "v5"}}
        assert f"smallchain approve {calls['deploy'].id}" in approval.body["answer"]["cli"]
        assert {"method": "POST", "url": f"https://sc.example.com/v1/toolcalls/{calls['deploy'].id}/approve"} \
            in approval.body["answer"]["http"]
        # The human tool's own notify_url wins over the settings' one, for both of its waits.
        [human_approval] = tool_hook.received
        assert human_approval.body["kind"] == "approval" and human_approval.body["tool"] == "ask_human"

        local.sc.approve(calls["ask_human"].id)
        local.idle()
        question = tool_hook.received[1]
        assert question.body["kind"] == "question"
        assert question.body["question"] == "Which region?"
        assert question.body["answer"]["cli"] == [f'smallchain respond {calls["ask_human"].id} "..."']
        assert len(settings_hook.received) == 1
        assert {e.kind for e in run.events} >= {"notify.sent"}
    finally:
        local.close()
        settings_hook.stop()
        tool_hook.stop()


def test_no_notification_without_a_url(local: Local) -> None:
    local.llm.script(first_turn_then_echo(call("ask_human", {"question": "?"})))
    local.apply([{"name": "ops", "llm": "fake", "tools": ["ask_human"]}], [ASK_HUMAN])
    run = local.start("ops", "go")
    assert "notify.sent" not in {e.kind for e in run.events}
    assert "notify.failed" not in {e.kind for e in run.events}


# --- steering --------------------------------------------------------------------------------------


def test_send_to_a_waiting_run_comes_after_the_tool_results(local: Local) -> None:
    local.llm.script(first_turn_then_echo(call("ask_human", {"question": "Which region?"})))
    local.apply([{"name": "ops", "system_prompt": "You operate.", "llm": "fake", "tools": ["ask_human"]}],
                [ASK_HUMAN])
    run = local.start("ops", "go")
    assert run.status == st.WAITING

    local.sc.send(run.id, "Also check the backups.")
    local.idle()
    assert len(local.llm.requests) == 1  # held until the next turn; the run still waits
    assert run.messages[-1]["role"] == "assistant"
    local.sc.respond(calls_of(run)["ask_human"].id, "eu-west-1")
    local.idle()

    assert run.status == st.SUCCEEDED
    sent = local.llm.requests[1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[-2]["content"] == "eu-west-1"
    assert sent[-1] == {"role": "user", "content": "Also check the backups."}
    with local.sc.db.transaction() as session:
        assert session.scalars(select(InboxRow.delivered_at).where(InboxRow.run_id == run.id)).all() != [None]


def test_send_to_a_succeeded_run_resumes_it(local: Local) -> None:
    def script(body: dict[str, Any]) -> Reply:
        return text(f"answer to: {last_message(body)['content']}")

    local.llm.script(script)
    local.apply([{"name": "chat", "llm": "fake"}])
    run = local.start("chat", "first question")
    assert (run.status, run.output) == (st.SUCCEEDED, "answer to: first question")

    local.sc.send(run.id, "a follow-up")
    local.idle()
    assert (run.status, run.output) == (st.SUCCEEDED, "answer to: a follow-up")
    assert [m["role"] for m in run.messages] == ["user", "assistant", "user", "assistant"]
    assert len(local.llm.requests) == 2 and len(run.llm_calls) == 2
    assert "run.resumed" in {e.kind for e in run.events}


def test_send_to_a_failed_run_resumes_it_at_the_next_turn(local: Local) -> None:
    from tests.support.llm_server import error

    replies = iter([error(400, "context too long"), text("recovered")])
    local.llm.script(lambda body: next(replies))
    local.apply([{"name": "chat", "llm": "fake"}])
    run = local.start("chat", "hello")
    assert run.status == st.FAILED

    local.sc.send(run.id, "try again, shorter")
    local.idle()
    assert (run.status, run.output, run.error) == (st.SUCCEEDED, "recovered", None)
    assert [c["step"] for c in run.llm_calls] == [0, 1]


def test_message_sent_during_the_final_turn_is_answered_too(local: Local) -> None:
    def script(body: dict[str, Any]) -> Reply:
        if len(local.llm.requests) == 1:
            return delay(1.0, text("first answer"))
        return text(f"answer to: {last_message(body)['content']}")

    local.llm.script(script)
    local.apply([{"name": "chat", "llm": "fake"}])
    run = local.sc.enqueue(agent="chat", user_message="hello")
    local.llm.wait_for_requests(1)
    local.sc.send(run.id, "and one more thing")  # the turn in flight did not see it
    local.idle()
    assert (run.status, run.output) == (st.SUCCEEDED, "answer to: and one more thing")
    assert [m.get("content") for m in run.messages] == [
        "hello", "first answer", "and one more thing", "answer to: and one more thing"]


def test_send_to_a_cancelled_run_is_refused(local: Local) -> None:
    local.llm.script(first_turn_then_echo(call("ask_human", {"question": "?"})))
    local.apply([{"name": "ops", "llm": "fake", "tools": ["ask_human"]}], [ASK_HUMAN])
    run = local.start("ops", "go")
    local.sc.cancel(run.id)
    local.idle()
    with pytest.raises(RunStateError, match="Cancelled"):
        local.sc.send(run.id, "hello?")
    assert local.sc.waiting() == []
