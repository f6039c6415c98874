"""Tool calls: executing one, completing one, and resuming the run when the last one completes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from smallchain import status as st
from smallchain.engine import window
from smallchain.engine.effects import Next
from smallchain.engine.events import emit
from smallchain.engine.snapshot import AgentSnapshot
from smallchain.messages import ToolMessage
from smallchain.spec import Prompts
from smallchain.store.db import Database
from smallchain.store.schema import Run, ToolCallRow, utcnow
from smallchain.tools import ToolContext, ToolError, get_executor, parse_arguments

log = logging.getLogger(__name__)

Call = st.Call
# A call whose worker died this many times is failed rather than retried forever
# (task_reject_on_worker_lost re-queues it every time the worker is killed).
MAX_ATTEMPTS = 3


def tool_message_content(call: ToolCallRow, prompts: Prompts) -> str:
    if call.status == Call.SUCCEEDED:
        return call.result or ""
    if call.status == Call.REJECTED:
        return prompts.rejected.format(reason=call.error or "")
    if call.status == Call.CANCELLED:
        return prompts.cancelled
    if call.status == Call.TIMED_OUT:
        return call.error or prompts.timed_out.format(timeout="the time allowed")
    return prompts.tool_error.format(error=call.error or "unknown error")


def tool_results(calls: Sequence[ToolCallRow], prompts: Prompts) -> list[ToolMessage]:
    """One tool message per call, in the order given (callers pass the LLM's order)."""
    return [ToolMessage(tool_call_id=c.llm_call_id, content=tool_message_content(c, prompts)) for c in calls]


def complete_call(
    session: Session,
    call_id: str,
    status: str,
    *,
    result: str | None = None,
    error: str | None = None,
    from_statuses: tuple[str, ...] = Call.OPEN,
) -> tuple[bool, list[Next]]:
    """Record a call's outcome. Returns (whether this caller completed it, steps to enqueue).

    Both updates are conditional, so each call completes once and, of all completers of a
    turn, exactly one sees the pending count reach zero and resumes the run.
    """
    now = utcnow()
    done = session.execute(
        update(ToolCallRow)
        .where(ToolCallRow.id == call_id, ToolCallRow.status.in_(from_statuses))
        .values(status=status, result=result, error=error, finished_at=now, updated_at=now)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return False, []
    call = session.get(ToolCallRow, call_id, populate_existing=True)
    assert call is not None
    remaining = session.execute(
        update(Run)
        .where(Run.id == call.run_id, Run.phase == st.PHASE_TOOLS, Run.step == call.step + 1)
        .values(pending_calls=Run.pending_calls - 1, updated_at=now)
        .returning(Run.pending_calls)
    ).scalar_one_or_none()
    outcome = "executed successfully" if status == Call.SUCCEEDED else f"{status}: {error or ''}".rstrip(": ")
    emit(session, call.run_id, f"tool.{status}", f"Tool '{call.name}' {outcome}",
         level="INFO" if status == Call.SUCCEEDED else "WARN", call_id=call_id)
    if remaining is None:  # the run was cancelled or finished meanwhile: nothing to resume
        return True, []
    if remaining == 0:
        return True, resume(session, call.run_id)
    _refresh_waiting(session, call.run_id)
    return True, []


def _refresh_waiting(session: Session, run_id: str) -> None:
    waiting = session.scalar(
        select(ToolCallRow.id).where(ToolCallRow.run_id == run_id, ToolCallRow.status.in_(Call.WAITING)).limit(1)
    )
    session.execute(
        update(Run).where(Run.id == run_id, Run.status.in_((st.RUNNING, st.WAITING)))
        .values(status=st.WAITING if waiting else st.RUNNING)
    )


def resume(session: Session, run_id: str) -> list[Next]:
    """Append the turn's tool results in the LLM's order and make the next LLM turn due."""
    run = session.get(Run, run_id, populate_existing=True)
    assert run is not None
    turn = run.step - 1
    calls = session.scalars(
        select(ToolCallRow).where(ToolCallRow.run_id == run_id, ToolCallRow.step == turn)
        .order_by(ToolCallRow.ordinal)
    ).all()
    prompts = AgentSnapshot.model_validate(run.agent).prompts
    window.append(session, run_id, turn, tool_results(calls, prompts))
    moved = session.execute(
        update(Run).where(Run.id == run_id, Run.phase == st.PHASE_TOOLS, Run.step == run.step)
        .values(phase=st.PHASE_LLM, status=st.RUNNING, updated_at=utcnow())
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return []
    return [Next("llm_turn", (run_id, run.step))]


def execute_tool(db: Database, call_id: str, default_timeout: float, public_url: str = "") -> list[Next]:
    with db.transaction() as session:
        claimed = session.execute(
            update(ToolCallRow)
            .where(ToolCallRow.id == call_id, ToolCallRow.status.in_((Call.PENDING, Call.RUNNING)))
            .values(status=Call.RUNNING, attempts=ToolCallRow.attempts + 1, started_at=utcnow(),
                    updated_at=utcnow())
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return []  # already completed (a redelivery) or cancelled
        call = session.get(ToolCallRow, call_id, populate_existing=True)
        assert call is not None
        run = session.get(Run, call.run_id)
        assert run is not None
        if call.attempts > MAX_ATTEMPTS:
            return complete_call(
                session, call_id, Call.FAILED,
                error=f"the tool call was interrupted {MAX_ATTEMPTS} times (its worker died); not retried again",
            )[1]
        snapshot = AgentSnapshot.model_validate(run.agent)
        tool = snapshot.tool(call.name)
        assert tool is not None, "unknown tools are answered when the turn is committed"
        arguments: dict[str, Any] = parse_arguments(tool, call.arguments)
        context = ToolContext(run_id=run.id, call_id=call_id, timeout=tool.timeout or default_timeout)
    if tool.kind == "webhook":  # handed to an external system, which completes the call later
        from smallchain.engine import webhook

        return webhook.hand_over(db, call_id, run.id, tool, arguments, public_url, default_timeout)
    try:
        result: str | None = get_executor(tool).execute(tool, arguments, context)
        outcome, error = Call.SUCCEEDED, None
    except ToolError as exc:
        result, outcome, error = None, Call.FAILED, str(exc)
    except Exception as exc:  # a broken tool must not crash the run: the LLM sees what went wrong
        log.exception("tool %s raised", call.name)
        result, outcome, error = None, Call.FAILED, f"{type(exc).__name__}: {exc}"
    with db.transaction() as session:
        return complete_call(session, call_id, outcome, result=result, error=error,
                             from_statuses=(Call.RUNNING,))[1]

