"""Answering what a run waits for: approvals, human answers, external callbacks; and steering a run.

Every function here commits one transaction and returns the steps to enqueue after it; the
callers (``Smallchain``, the HTTP service, the CLI) dispatch them. Each answer is a conditional
UPDATE from the state it answers, so an answer counts once however often it is sent.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from smallchain import status as st
from smallchain.engine import timers
from smallchain.engine.calls import _refresh_waiting, complete_call
from smallchain.engine.effects import Next
from smallchain.engine.events import emit
from smallchain.engine.snapshot import AgentSnapshot
from smallchain.engine.webhook import hash_token, notify_url_for
from smallchain.store.db import Database
from smallchain.store.schema import InboxRow, LLMCallRow, Run, ToolCallRow, utcnow

Call = st.Call

_EXPECTED = {
    Call.AWAITING_APPROVAL: "awaiting approval",
    Call.AWAITING_HUMAN: "awaiting a human answer",
    Call.AWAITING_CALLBACK: "awaiting an external callback",
}


class CallNotFound(LookupError):
    """No tool call has this id."""


class RunGone(LookupError):
    """No run has this id."""


class CallStateError(ValueError):
    """The call is not in the state this answer is for (e.g. approving a call already approved)."""

    def __init__(self, call_id: str, status: str, expected: str) -> None:
        self.call_id = call_id
        self.status = status
        done = " (it is already complete)" if status in Call.DONE else ""
        super().__init__(f"tool call {call_id} is {status}{done}, not {expected}")


class RunStateError(ValueError):
    """The run cannot take a message in its state (it was cancelled)."""


class TokenMissing(PermissionError):
    """An external completion came without its token."""


class TokenInvalid(PermissionError):
    """An external completion came with a token that is not this call's."""


@dataclass(frozen=True)
class WaitingCall:
    """A tool call waiting on a person or an external system."""

    id: str
    run_id: str
    agent: str
    tool: str
    status: str
    arguments: Any
    since: datetime
    timeout_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, times in ISO 8601 UTC."""
        return {
            "id": self.id, "run_id": self.run_id, "agent": self.agent, "tool": self.tool, "status": self.status,
            "arguments": self.arguments, "since": iso(self.since), "timeout_at": iso(self.timeout_at),
        }


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC (SQLite hands back naive datetimes, which the store always writes in UTC)."""
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def _call(session: Session, call_id: str) -> ToolCallRow:
    call = session.get(ToolCallRow, call_id, populate_existing=True)
    if call is None:
        raise CallNotFound(f"no tool call with id {call_id!r}")
    return call


def _state_error(session: Session, call_id: str, expected: str) -> CallStateError:
    call = _call(session, call_id)
    return CallStateError(call_id, call.status, _EXPECTED.get(expected, expected))


def _parse(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments


# --- approvals ------------------------------------------------------------------------------------


def approve(db: Database, call_id: str, notify_url: str | None = None) -> tuple[str, list[Next]]:
    """Let an awaiting_approval call go ahead. Returns (its new status, steps).

    A worker tool becomes pending and is executed; a human tool goes on to wait for its answer
    (announced to ``notify_url`` if one applies); an agent tool starts its child run.
    """
    with db.transaction() as session:
        call = _call(session, call_id)
        run = session.get(Run, call.run_id)
        assert run is not None
        tool = AgentSnapshot.model_validate(run.agent).tool(call.name)
        kind = tool.kind if tool is not None else call.kind
        now = utcnow()
        if kind == "human":
            new_status, timeout_at = Call.AWAITING_HUMAN, timers.deadline(tool, now)
        else:
            new_status, timeout_at = Call.PENDING, None
        moved = session.execute(
            update(ToolCallRow).where(ToolCallRow.id == call_id, ToolCallRow.status == Call.AWAITING_APPROVAL)
            .values(status=new_status, timeout_at=timeout_at, updated_at=now)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise _state_error(session, call_id, Call.AWAITING_APPROVAL)
        emit(session, run.id, "tool.approved", f"Tool '{call.name}' was approved", call_id=call_id)
        _refresh_waiting(session, run.id)
        steps: list[Next] = []
        if kind == "human":
            if notify_url_for(tool, notify_url):
                steps.append(Next("notify", (call_id,)))
        elif kind == "agent":
            steps.append(Next("start_child", (call_id,)))
        else:
            steps.append(Next("execute_tool", (call_id,)))
        return new_status, steps


def reject(db: Database, call_id: str, reason: str) -> list[Next]:
    """Refuse an awaiting_approval call; the LLM sees the agent's ``rejected`` prompt with the reason."""
    with db.transaction() as session:
        done, steps = complete_call(session, call_id, Call.REJECTED, error=reason,
                                    from_statuses=(Call.AWAITING_APPROVAL,))
        if not done:
            raise _state_error(session, call_id, Call.AWAITING_APPROVAL)
        return steps


# --- answers ----------------------------------------------------------------------------------------


def respond(db: Database, call_id: str, text: str) -> list[Next]:
    """Answer a human tool's call: ``text`` is its result."""
    with db.transaction() as session:
        done, steps = complete_call(session, call_id, Call.SUCCEEDED, result=text,
                                    from_statuses=(Call.AWAITING_HUMAN,))
        if not done:
            raise _state_error(session, call_id, Call.AWAITING_HUMAN)
        return steps


def _check_outcome(result: str | None, error: str | None) -> None:
    if (result is None) == (error is None):
        raise ValueError("give exactly one of result and error")


def complete_external(db: Database, call_id: str, token: str | None, *, result: str | None = None,
                      error: str | None = None, trusted: bool = False) -> tuple[str, list[Next]]:
    """Complete a call from outside. Returns (its final status, steps).

    With ``trusted`` (the operator's Python API) no token is needed, and a call awaiting a human
    answer may be completed too. Otherwise ``token`` must be the one POSTed with the call: it is
    compared in constant time with the stored hash, and works once, since the completion is a
    conditional update from the waiting state. A token that matches but comes again finds the
    call complete (CallStateError), so an external system retrying a delivered result learns
    that it was delivered; any other token is refused (TokenInvalid) whatever the call's state.
    """
    _check_outcome(result, error)
    outcome = Call.SUCCEEDED if error is None else Call.FAILED
    with db.transaction() as session:
        call = _call(session, call_id)
        if trusted:
            allowed: tuple[str, ...] = (Call.AWAITING_CALLBACK, Call.AWAITING_HUMAN)
        else:
            if not token:
                raise TokenMissing("a token is needed to complete this tool call")
            if call.token_hash is None or not hmac.compare_digest(hash_token(token), call.token_hash):
                raise TokenInvalid("the token is not valid for this tool call")
            # running: the external system called back before its answer to our POST arrived.
            allowed = (Call.RUNNING, Call.AWAITING_CALLBACK)
        done, steps = complete_call(session, call_id, outcome, result=result, error=error, from_statuses=allowed)
        if not done:
            raise _state_error(session, call_id, Call.AWAITING_CALLBACK)
        return outcome, steps


# --- listing ------------------------------------------------------------------------------------------


def waiting(db: Database, run_id: str | None = None) -> list[WaitingCall]:
    """Every call waiting on a person or an external system, oldest first."""
    with db.transaction() as session:
        query = (
            select(ToolCallRow, Run.agent_name).join(Run, Run.id == ToolCallRow.run_id)
            .where(ToolCallRow.status.in_(Call.WAITING)).order_by(ToolCallRow.updated_at, ToolCallRow.id)
        )
        if run_id is not None:
            query = query.where(ToolCallRow.run_id == run_id)
        return [
            WaitingCall(id=c.id, run_id=c.run_id, agent=agent, tool=c.name, status=c.status,
                        arguments=_parse(c.arguments), since=c.updated_at, timeout_at=c.timeout_at)
            for c, agent in session.execute(query).all()
        ]


# --- steering -------------------------------------------------------------------------------------------


def send(db: Database, run_id: str, text: str) -> list[Next]:
    """A user message for the run, seen by the agent at its next LLM turn.

    It is held in the run's inbox and moved into the window when the next turn starts, so it
    never lands between an assistant message and its tool results. A run that is running or
    waiting takes it at its next turn; a run that finished (Succeeded or Failed) is reopened and
    its next turn enqueued. A cancelled run takes no message.
    """
    if not text:
        raise ValueError("the message is empty")
    with db.transaction() as session:
        now = utcnow()
        # Takes the run row first: a turn committing its final answer concurrently either sees
        # this message (and goes on) or has finished the run before we look (and we reopen it).
        held = session.execute(
            update(Run).where(Run.id == run_id, Run.status.in_(st.ACTIVE)).values(updated_at=now)
        )
        run = session.get(Run, run_id, populate_existing=True)
        if run is None:
            raise RunGone(f"no run with id {run_id!r}")
        session.add(InboxRow(run_id=run_id, content=text, created_at=now))
        if held.rowcount == 1:  # type: ignore[attr-defined]
            emit(session, run_id, "run.message", f"Message sent to the run (delivered at its next turn): {text}")
            return []
        if run.status == st.CANCELLED:
            raise RunStateError(f"run {run_id} is {run.status}; a cancelled run takes no more messages")
        # A failed LLM turn left its record at this step: the reopened run's turn takes the next one.
        failed_turn = session.scalar(
            select(LLMCallRow.id).where(LLMCallRow.run_id == run_id, LLMCallRow.step == run.step)
        )
        step = run.step + 1 if failed_turn is not None else run.step
        reopened = session.execute(
            update(Run).where(Run.id == run_id, Run.status.in_((st.SUCCEEDED, st.FAILED)))
            .values(status=st.RUNNING, phase=st.PHASE_LLM, step=step, output=None, error=None, finished_at=None,
                    updated_at=now)
        )
        if reopened.rowcount != 1:  # type: ignore[attr-defined]
            raise RunStateError(f"run {run_id} is {run.status} and cannot take a message")
        emit(session, run_id, "run.resumed", f"Run {run_id[:8]} was {run.status.lower()}; "
             f"resumed by a message: {text}", previous_status=run.status)
        return [Next("llm_turn", (run_id, step))]
