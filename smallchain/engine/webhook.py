"""External tools (``executor: {webhook: ...}``) and notifications: JSON POSTs to the outside world.

A webhook tool call is handed over, not executed: the worker POSTs the call with a callback URL
and a single-use token, sets the call awaiting_callback and returns. The external system later
completes it through ``POST /v1/toolcalls/{id}/result`` (see smallchain.waits.complete_external).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from typing import Any

import httpx
from sqlalchemy import update

from smallchain import status as st
from smallchain.engine import timers
from smallchain.engine.calls import complete_call
from smallchain.engine.effects import Next
from smallchain.engine.events import emit
from smallchain.engine.snapshot import AgentSnapshot
from smallchain.spec import ToolSpec
from smallchain.store.db import Database
from smallchain.store.schema import Run, ToolCallRow, utcnow

log = logging.getLogger(__name__)

Call = st.Call

# Bounded retries of one POST: connection errors, timeouts and 5xx answers. The waits between
# attempts are BACKOFF * 2**n seconds (0.5, 1, 2: under 4 s in all).
ATTEMPTS = 4
BACKOFF = 0.5
USER_AGENT = "smallchain-webhook/1"


class DeliveryError(Exception):
    """The POST did not succeed after every attempt (or the receiver refused it with a 4xx)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def callback_url(public_url: str, call_id: str) -> str:
    return f"{public_url.rstrip('/')}/v1/toolcalls/{call_id}/result"


def post_json(url: str, payload: dict[str, Any], headers: dict[str, str] | None = None, *,
              timeout: float = 30.0, attempts: int | None = None, backoff: float | None = None) -> httpx.Response:
    """POST ``payload`` as JSON; retried with exponential backoff on connection errors and 5xx."""
    attempts = ATTEMPTS if attempts is None else attempts
    backoff = BACKOFF if backoff is None else backoff
    body = json.dumps(payload).encode()
    sent_headers = {"User-Agent": USER_AGENT, **(headers or {}), "Content-Type": "application/json"}
    last = "no attempt made"
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for attempt in range(max(1, attempts)):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                response = client.post(url, content=body, headers=sent_headers)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.warning("POST %s failed (attempt %d/%d): %s", url, attempt + 1, attempts, last)
                continue
            if response.status_code < 300:
                return response
            last = f"HTTP {response.status_code}: {response.text[:300]}".rstrip(": ")
            if response.status_code < 500 and response.status_code not in (408, 429):
                raise DeliveryError(f"POST {url} was refused: {last}")
            log.warning("POST %s failed (attempt %d/%d): %s", url, attempt + 1, attempts, last)
    raise DeliveryError(f"POST {url} failed after {attempts} attempts: {last}")


def hand_over(db: Database, call_id: str, run_id: str, tool: ToolSpec, arguments: dict[str, Any],
              public_url: str, http_timeout: float) -> list[Next]:
    """The execute_tool step of a webhook tool; the call is already claimed (status running)."""
    assert tool.executor is not None and tool.executor.webhook is not None
    hook = tool.executor.webhook
    token = secrets.token_urlsafe(32)
    with db.transaction() as session:
        # Only the hash is kept. A re-run of this step (its worker died) issues a new token.
        stored = session.execute(
            update(ToolCallRow).where(ToolCallRow.id == call_id, ToolCallRow.status == Call.RUNNING)
            .values(token_hash=hash_token(token), updated_at=utcnow())
        )
        if stored.rowcount != 1:  # type: ignore[attr-defined]
            return []
    payload = {
        "call_id": call_id,
        "run_id": run_id,
        "tool": tool.name,
        "arguments": arguments,
        "callback_url": callback_url(public_url, call_id),
        "token": token,
    }
    try:
        post_json(hook.url, payload, hook.headers, timeout=http_timeout)
    except DeliveryError as exc:
        with db.transaction() as session:
            return complete_call(session, call_id, Call.FAILED, error=str(exc), from_statuses=(Call.RUNNING,))[1]
    with db.transaction() as session:
        # Conditional: the external system may already have answered (it may call back before
        # its reply to the POST), in which case the call is complete and stays so.
        waiting = session.execute(
            update(ToolCallRow).where(ToolCallRow.id == call_id, ToolCallRow.status == Call.RUNNING)
            .values(status=Call.AWAITING_CALLBACK, timeout_at=timers.deadline(tool), updated_at=utcnow())
        )
        if waiting.rowcount == 1:  # type: ignore[attr-defined]
            emit(session, run_id, "tool.awaiting_callback",
                 f"Tool '{tool.name}' was handed to {hook.url}; waiting for its callback", call_id=call_id)
            session.execute(
                update(Run).where(Run.id == run_id, Run.status == st.RUNNING, Run.phase == st.PHASE_TOOLS)
                .values(status=st.WAITING, updated_at=utcnow())
            )
    return []


# --- notifications ---------------------------------------------------------------------------------


def notify_url_for(tool: ToolSpec | None, default: str | None) -> str | None:
    if tool is not None and tool.human is not None and tool.human.notify_url:
        return tool.human.notify_url
    return default


def notice(call: ToolCallRow, run: Run, public_url: str) -> dict[str, Any] | None:
    """The JSON announcing a call that waits on a person, or None if it no longer waits."""
    base = f"{public_url.rstrip('/')}/v1/toolcalls/{call.id}"
    try:
        arguments: Any = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        arguments = call.arguments
    payload: dict[str, Any] = {
        "call_id": call.id, "run_id": run.id, "agent": run.agent_name, "tool": call.name,
        "arguments": arguments, "timeout_at": call.timeout_at.isoformat() if call.timeout_at else None,
    }
    if call.status == Call.AWAITING_APPROVAL:
        payload["kind"] = "approval"
        payload["answer"] = {
            "cli": [f"smallchain approve {call.id}", f'smallchain reject {call.id} --reason "..."'],
            "http": [
                {"method": "POST", "url": f"{base}/approve"},
                {"method": "POST", "url": f"{base}/reject", "body": {"reason": "..."}},
            ],
        }
        return payload
    if call.status == Call.AWAITING_HUMAN:
        payload["kind"] = "question"
        question = arguments.get("question") if isinstance(arguments, dict) else None
        payload["question"] = question if isinstance(question, str) else call.arguments
        payload["answer"] = {
            "cli": [f'smallchain respond {call.id} "..."'],
            "http": [{"method": "POST", "url": f"{base}/respond", "body": {"text": "..."}}],
        }
        return payload
    return None


def notify(db: Database, call_id: str, default_url: str | None, public_url: str, http_timeout: float) -> list[Next]:
    """The notify step: announce an approval request or a question, after the turn committed."""
    with db.transaction() as session:
        call = session.get(ToolCallRow, call_id)
        run = None if call is None else session.get(Run, call.run_id)
        if call is None or run is None:
            return []
        tool = AgentSnapshot.model_validate(run.agent).tool(call.name)
        url = notify_url_for(tool, default_url)
        payload = None if url is None else notice(call, run, public_url)
    if url is None or payload is None:
        return []  # answered (or cancelled) before the notice went out: nothing to announce
    try:
        post_json(url, payload, timeout=http_timeout)
    except DeliveryError as exc:
        log.warning("notification for tool call %s not delivered: %s", call_id, exc)
        with db.transaction() as session:
            emit(session, run.id, "notify.failed", f"Could not notify {url} about tool '{call.name}': {exc}",
                 level="WARN", call_id=call_id)
        return []
    with db.transaction() as session:
        emit(session, run.id, "notify.sent", f"Sent the {payload['kind']} for tool '{call.name}' to {url}",
             call_id=call_id)
    return []
