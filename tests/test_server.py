"""The HTTP service over a real uvicorn on loopback: tool-call callbacks and the operator endpoints.

Steps run in-process (no broker), against a real database and the fake OpenAI-compatible server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from smallchain import status as st
from smallchain.server import create_app
from tests.support.hooks import Local, Receiver, ServerThread, make_local
from tests.support.llm_server import FakeLLM, Reply, call, last_message, text, tool_calls, tool_results, turn

Call = st.Call
API_KEY = "operator-key"
OPERATOR = {"Authorization": f"Bearer {API_KEY}"}
QUESTION = {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}
TOOLS: list[dict[str, Any]] = [
    {"name": "deploy", "function": "tests.support.runtools:slow_echo", "requires_approval": True},
    {"name": "ask_human", "human": {}, "parameters": QUESTION},
]


@dataclass
class Served:
    local: Local
    http: httpx.Client
    hook: Receiver

    def start_run(self, *calls: Any, agent_tools: list[str] | None = None) -> tuple[str, dict[str, str]]:
        """A run of agent ``ops`` whose first turn makes ``calls``; returns (run id, call id by tool name)."""
        def script(body: dict[str, Any]) -> Reply:
            if turn(body) == 0 and calls:
                return tool_calls(*calls)
            results = tool_results(body)
            return text("results: " + " | ".join(results) if results else f"re: {last_message(body)['content']}")

        self.local.llm.script(script)
        run = self.local.start("ops", "go")
        return run.id, {c.name: c.id for c in run.tool_calls}

    def token(self, call_id: str) -> str:
        [posted] = [r for r in self.hook.received if r.body["call_id"] == call_id]
        return str(posted.body["token"])


@pytest.fixture
def served(database_url: str, fake_llm: FakeLLM, tmp_path: Path) -> Iterator[Served]:
    hook = Receiver().start()
    local = make_local(database_url, fake_llm, tmp_path, api_key=API_KEY)
    webhook = {"name": "lookup", "executor": {"webhook": {"url": hook.url}},
               "parameters": {"type": "object", "properties": {"key": {"type": "string"}}}}
    local.apply([{"name": "ops", "llm": "fake", "tools": ["deploy", "ask_human", "lookup"]}], [*TOOLS, webhook])
    server = ServerThread(create_app(local.sc)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            yield Served(local, http, hook)
    finally:
        server.stop()
        hook.stop()
        local.close()


def test_callback_status_codes(served: Served) -> None:
    run_id, calls = served.start_run(call("lookup", {"key": "a"}), call("ask_human", {"question": "?"}))
    lookup = calls["lookup"]
    token = served.token(lookup)
    url = f"/v1/toolcalls/{lookup}/result"

    missing = served.http.post(url, json={"result": "x"})
    assert missing.status_code == 401 and "token" in missing.json()["detail"]
    assert served.http.post(url, json={"result": "x"}, headers={"Authorization": "Basic abc"}).status_code == 401
    forged = served.http.post(url, json={"result": "x"}, headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 403
    # A token is only ever valid for its own call.
    other = served.http.post(f"/v1/toolcalls/{calls['ask_human']}/result", json={"result": "x"},
                             headers={"X-Smallchain-Token": token})
    assert other.status_code == 403
    unknown = served.http.post("/v1/toolcalls/nope/result", json={"result": "x"}, headers={"X-Smallchain-Token": token})
    assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]

    auth = {"Authorization": f"Bearer {token}"}
    for body, reason in [
        ({}, "exactly one"),
        ({"result": "x", "error": "y"}, "exactly one"),
        ({"result": 5}, "result"),
        ({"result": "x", "extra": 1}, "extra"),
        ([1, 2], "body"),
    ]:
        response = served.http.post(url, json=body, headers=auth)
        assert response.status_code == 422, (body, response.text)
        assert reason in response.json()["detail"], (body, response.text)
    not_json = served.http.post(url, content=b"{oops", headers={**auth, "Content-Type": "application/json"})
    assert not_json.status_code == 422 and "JSON" in not_json.json()["detail"]
    assert len(served.local.llm.requests) == 1  # none of the above completed anything

    ok = served.http.post(url, json={"error": "inventory offline"}, headers=auth)
    assert ok.status_code == 200 and ok.json() == {"id": lookup, "status": Call.FAILED}
    again = served.http.post(url, json={"result": "x"}, headers=auth)
    assert again.status_code == 409 and "already complete" in again.json()["detail"]
    assert served.http.post(url, json={"result": "x"}, headers={"X-Smallchain-Token": "forged"}).status_code == 403

    served.local.sc.respond(calls["ask_human"], "fine")
    served.local.idle()
    assert tool_results(served.local.llm.requests[1]) == ["Error: inventory offline", "fine"]
    assert len(served.local.llm.requests) == 2
    assert served.local.sc.get_run(run_id).status == st.SUCCEEDED


def test_operator_endpoints(served: Served) -> None:
    run_id, calls = served.start_run(call("deploy", {"text": "v1"}), call("ask_human", {"question": "Region?"}),
                                     call("lookup", {"key": "k"}))
    http = served.http

    assert http.post(f"/v1/toolcalls/{calls['deploy']}/approve").status_code == 401
    assert http.post(f"/v1/toolcalls/{calls['deploy']}/approve",
                     headers={"Authorization": "Bearer wrong"}).status_code == 403

    waiting = http.get("/v1/toolcalls", params={"waiting": "true"}, headers=OPERATOR)
    assert waiting.status_code == 200
    rows = {r["tool"]: r for r in waiting.json()}
    assert {t: r["status"] for t, r in rows.items()} == {
        "deploy": Call.AWAITING_APPROVAL, "ask_human": Call.AWAITING_HUMAN, "lookup": Call.AWAITING_CALLBACK}
    assert rows["ask_human"] | {"since": None} == {
        "id": calls["ask_human"], "run_id": run_id, "agent": "ops", "tool": "ask_human",
        "status": Call.AWAITING_HUMAN, "arguments": {"question": "Region?"}, "since": None, "timeout_at": None}
    assert rows["ask_human"]["since"].endswith("Z")

    described = http.get(f"/v1/runs/{run_id}", headers=OPERATOR)
    assert described.status_code == 200
    assert described.json()["status"] == st.WAITING and len(described.json()["waiting"]) == 3
    assert http.get("/v1/runs/nope", headers=OPERATOR).status_code == 404

    approved = http.post(f"/v1/toolcalls/{calls['deploy']}/approve", headers=OPERATOR)
    assert approved.status_code == 200 and approved.json() == {"id": calls["deploy"], "status": Call.PENDING}
    served.local.idle()
    twice = http.post(f"/v1/toolcalls/{calls['deploy']}/approve", headers=OPERATOR)
    assert twice.status_code == 409 and "succeeded" in twice.json()["detail"]
    assert http.post("/v1/toolcalls/nope/approve", headers=OPERATOR).status_code == 404
    assert http.post(f"/v1/toolcalls/{calls['ask_human']}/reject", json={"reason": ""},
                     headers=OPERATOR).status_code == 422
    assert http.post(f"/v1/toolcalls/{calls['ask_human']}/reject", json={"reason": "no"},
                     headers=OPERATOR).status_code == 409
    assert http.post(f"/v1/toolcalls/{calls['ask_human']}/respond", json={},
                     headers=OPERATOR).status_code == 422

    sent = http.post(f"/v1/runs/{run_id}/messages", json={"text": "Also: be quick."}, headers=OPERATOR)
    assert sent.status_code == 200 and sent.json() == {"run_id": run_id, "status": st.WAITING}
    assert http.post("/v1/runs/nope/messages", json={"text": "x"}, headers=OPERATOR).status_code == 404

    assert http.post(f"/v1/toolcalls/{calls['ask_human']}/respond", json={"text": "eu"},
                     headers=OPERATOR).status_code == 200
    served.local.sc.complete_tool_call(calls["lookup"], result="found")
    served.local.idle()
    assert served.local.sc.get_run(run_id).status == st.SUCCEEDED
    second = served.local.llm.requests[1]["messages"]
    assert [m["role"] for m in second[-4:]] == ["tool", "tool", "tool", "user"]
    assert second[-1]["content"] == "Also: be quick."
    assert http.get("/v1/toolcalls", params={"waiting": "true"}, headers=OPERATOR).json() == []

    # A message to a finished run resumes it.
    again = http.post(f"/v1/runs/{run_id}/messages", json={"text": "and now?"}, headers=OPERATOR)
    assert again.status_code == 200
    served.local.idle()
    run = served.local.sc.get_run(run_id)
    assert (run.status, run.output) == (st.SUCCEEDED, "re: and now?")


def test_operator_endpoints_need_an_api_key(database_url: str, fake_llm: FakeLLM, tmp_path: Path) -> None:
    local = make_local(database_url, fake_llm, tmp_path, api_key=None)
    server = ServerThread(create_app(local.sc)).start()
    try:
        with httpx.Client(base_url=server.url) as http:
            for method, path in [("POST", "/v1/toolcalls/x/approve"), ("GET", "/v1/toolcalls"),
                                 ("POST", "/v1/runs/x/messages"), ("GET", "/v1/runs/x")]:
                response = http.request(method, path, headers=OPERATOR, json={"text": "x"})
                assert response.status_code == 503, (path, response.text)
                assert "SMALLCHAIN_API_KEY" in response.json()["detail"]
            health = http.get("/healthz")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            # Callbacks authenticate with their own token, not the api key.
            assert http.post("/v1/toolcalls/x/result", json={"result": "r"},
                             headers={"X-Smallchain-Token": "t"}).status_code == 404
    finally:
        server.stop()
        local.close()
