"""One LLM turn: read the window, call the LLM, commit the reply and plan its tool calls."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from smallchain import status as st
from smallchain.engine import inbox, runs, timers, window
from smallchain.engine.calls import tool_results
from smallchain.engine.effects import Next
from smallchain.engine.events import emit
from smallchain.engine.snapshot import AgentSnapshot
from smallchain.envref import expand_env
from smallchain.llm import LLMError, LLMRequest, LLMResponse, get_provider
from smallchain.messages import AssistantMessage
from smallchain.store.db import Database
from smallchain.store.schema import LLMCallRow, Run, ToolCallRow, utcnow
from smallchain.tools import ArgumentError, parse_arguments

Call = st.Call


@dataclass(frozen=True)
class PreparedTurn:
    run_id: str
    step: int
    request: LLMRequest
    snapshot: AgentSnapshot


def prepare(db: Database, run_id: str, step: int, max_steps: int) -> PreparedTurn | list[Next]:
    """The request for turn ``step``, or the steps to take instead (none, if it already ran)."""
    with db.transaction() as session:
        run = session.get(Run, run_id)
        if run is None or run.phase != st.PHASE_LLM or run.step != step or run.status not in st.ACTIVE:
            return []  # a redelivery of a turn that already committed, or a finished run
        snapshot = AgentSnapshot.model_validate(run.agent)
        if run.status == st.PENDING:
            run.status = st.RUNNING
            emit(session, run_id, "run.started", f"Agent '{snapshot.name}' is executing the task")
        limit = snapshot.max_steps or max_steps
        if step >= limit:
            return runs.finish(session, run, st.FAILED,
                               error=f"the run reached its limit of {limit} LLM turns (max_steps)")
        inbox.deliver(session, run_id, step)  # messages sent to the run meanwhile (steering)
        messages = window.read(session, run_id)
    try:
        parameters = expand_env(snapshot.llm.parameters)
    except ValueError as exc:
        return fail(db, run_id, step, None, str(exc))
    request = LLMRequest(model=snapshot.llm.model, messages=messages, tools=snapshot.tool_definitions,
                         parameters=parameters, agent=snapshot.name)
    return PreparedTurn(run_id, step, request, snapshot)


def call_llm(turn: PreparedTurn) -> LLMResponse:
    """Outside any transaction: may take minutes. Raises TransientLLMError to be retried."""
    return get_provider(turn.snapshot.llm).complete(turn.request)


def run_turn(db: Database, run_id: str, step: int, max_steps: int, notify_url: str | None = None) -> list[Next]:
    """The whole turn; TransientLLMError propagates so the caller can retry with backoff."""
    prepared = prepare(db, run_id, step, max_steps)
    if not isinstance(prepared, PreparedTurn):
        return prepared
    started = time.monotonic()
    try:
        response = call_llm(prepared)
    except LLMError as exc:
        if type(exc) is not LLMError:
            raise
        return fail(db, run_id, step, prepared.request, str(exc))
    return commit(db, prepared, response, int((time.monotonic() - started) * 1000), notify_url=notify_url)


def _llm_call_row(run_id: str, step: int, model: str | None, request: LLMRequest | None,
                  **outcome: Any) -> LLMCallRow:
    """The window is append-only, so the messages sent are its first ``window_size`` rows:
    storing the count instead of a copy keeps a long run's history linear in its length."""
    body = request.body() if request else {}
    body.pop("messages", None)
    return LLMCallRow(run_id=run_id, step=step, model=model, request=body,
                      window_size=len(request.messages) if request else 0, **outcome)


def fail(db: Database, run_id: str, step: int, request: LLMRequest | None, error: str) -> list[Next]:
    with db.transaction() as session:
        run = session.get(Run, run_id)
        if run is None or run.phase != st.PHASE_LLM or run.step != step or run.status not in st.ACTIVE:
            return []
        session.add(_llm_call_row(run_id, step, run.agent["llm"].get("model"), request, response=None, error=error))
        return runs.finish(session, run, st.FAILED, error=f"LLM call failed: {error}")


def commit(db: Database, turn: PreparedTurn, response: LLMResponse, latency_ms: int,
           notify_url: str | None = None) -> list[Next]:
    message = response.message
    with db.transaction() as session:
        advanced = session.execute(
            update(Run)
            .where(Run.id == turn.run_id, Run.step == turn.step, Run.phase == st.PHASE_LLM,
                   Run.status.in_(st.ACTIVE))
            .values(step=turn.step + 1, updated_at=utcnow(),
                    prompt_tokens=Run.prompt_tokens + response.usage.prompt_tokens,
                    completion_tokens=Run.completion_tokens + response.usage.completion_tokens)
        )
        if advanced.rowcount != 1:  # type: ignore[attr-defined]
            return []  # another delivery of this turn committed first; its reply stands
        run = session.get(Run, turn.run_id, populate_existing=True)
        assert run is not None
        session.add(_llm_call_row(
            run.id, turn.step, turn.request.model, turn.request,
            response=response.raw, prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens, latency_ms=latency_ms,
        ))
        window.append(session, run.id, turn.step, [message])
        if not message.tool_calls:
            if inbox.has_undelivered(session, run.id):  # a message sent during this turn: answer it too
                return [Next("llm_turn", (run.id, turn.step + 1))]
            return runs.finish(session, run, st.SUCCEEDED, output=message.content or "")
        return _plan_calls(session, run, turn, message, notify_url)


def _plan_calls(session: Session, run: Run, turn: PreparedTurn, message: AssistantMessage,
                notify_url: str | None = None) -> list[Next]:
    """One row per call; bad calls are answered at once, the rest go to workers or wait."""
    assert message.tool_calls
    snapshot = turn.snapshot
    steps: list[Next] = []
    rows: list[ToolCallRow] = []
    for ordinal, request in enumerate(message.tool_calls):
        name, raw = request.function.name, request.function.arguments
        row = ToolCallRow(id=uuid.uuid4().hex, run_id=run.id, step=turn.step, ordinal=ordinal,
                          llm_call_id=request.id, name=name, arguments=raw, kind="invalid",
                          status=Call.PENDING, attempts=0)
        rows.append(row)
        emit(session, run.id, "tool.requested", f"Agent '{snapshot.name}' is using tool: {name}",
             call_id=row.id, arguments=raw)
        tool = snapshot.tool(name)
        if tool is None:
            offered = ", ".join(t.name for t in snapshot.tools) or "none"
            _answer(row, f"there is no tool named {name!r}; the tools are: {offered}")
            continue
        row.kind = tool.kind
        try:
            parse_arguments(tool, raw)  # only checked here; the executing step parses again
        except ArgumentError as exc:
            _answer(row, str(exc))
            continue
        if tool.requires_approval:
            row.status = Call.AWAITING_APPROVAL
        elif tool.kind == "human":
            row.status = Call.AWAITING_HUMAN
        elif tool.kind == "agent":
            steps.append(Next("start_child", (row.id,)))
        else:
            steps.append(Next("execute_tool", (row.id,)))
        if row.status in Call.WAITING:
            row.timeout_at = timers.deadline(tool)
            if (tool.human and tool.human.notify_url) or notify_url:
                steps.append(Next("notify", (row.id,)))
    session.add_all(rows)
    open_calls = [r for r in rows if r.status in Call.OPEN]
    if not open_calls:
        # Nothing to wait for: the results go in now and the next turn is due.
        window.append(session, run.id, turn.step, tool_results(rows, snapshot.prompts))
        return [Next("llm_turn", (run.id, turn.step + 1))]
    waiting = any(r.status in Call.WAITING for r in rows)
    session.execute(
        update(Run).where(Run.id == run.id)
        .values(phase=st.PHASE_TOOLS, pending_calls=len(open_calls), status=st.WAITING if waiting else st.RUNNING)
    )
    return steps


def _answer(row: ToolCallRow, error: str) -> None:
    row.status = Call.FAILED
    row.error = error
    row.finished_at = utcnow()
