"""Starting and finishing runs."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.orm import Session

from smallchain import status as st
from smallchain.engine import window
from smallchain.engine.effects import Next
from smallchain.engine.events import emit
from smallchain.engine.snapshot import AgentSnapshot
from smallchain.messages import ChatMessage, SystemMessage, UserMessage
from smallchain.store.schema import Run, utcnow


def new_run_id() -> str:
    return uuid.uuid4().hex


def child_run_id(call_id: str) -> str:
    # Derived from the call, so a redelivered start_child cannot create a second child.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"smallchain:call:{call_id}").hex


def insert_run(
    session: Session,
    run_id: str,
    snapshot: AgentSnapshot,
    user_message: str,
    *,
    name: str | None = None,
    task_name: str | None = None,
    parent: Run | None = None,
    parent_call_id: str | None = None,
) -> Next:
    run = Run(
        id=run_id,
        name=name,
        task_name=task_name,
        agent_name=snapshot.name,
        agent=snapshot.model_dump(mode="json"),
        status=st.PENDING,
        phase=st.PHASE_LLM,
        step=0,
        pending_calls=0,
        depth=0 if parent is None else parent.depth + 1,
        parent_run_id=None if parent is None else parent.id,
        parent_call_id=parent_call_id,
        root_run_id=run_id if parent is None else parent.root_run_id,
    )
    session.add(run)
    session.flush()
    messages: list[ChatMessage] = []
    if snapshot.system_prompt:
        messages.append(SystemMessage(content=snapshot.system_prompt))
    messages.append(UserMessage(content=user_message))
    window.append(session, run_id, 0, messages)
    label = f"Run '{name}'" if name else f"Run {run_id[:8]}"
    emit(session, run_id, "run.created",
         f"{label} created: agent '{snapshot.name}', message: {user_message}",
         agent=snapshot.name, depth=run.depth)
    return Next("llm_turn", (run_id, 0))


def finish(session: Session, run: Run, status: str, *, output: str | None = None,
           error: str | None = None) -> list[Next]:
    """Move an active run to a terminal status; only the first caller succeeds."""
    result = session.execute(
        update(Run)
        .where(Run.id == run.id, Run.status.in_(st.ACTIVE))
        .values(status=status, phase=st.PHASE_DONE, output=output, error=error,
                updated_at=utcnow(), finished_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return []
    label = f"Run '{run.name}'" if run.name else f"Run {run.id[:8]}"
    if status == st.SUCCEEDED:
        emit(session, run.id, "run.succeeded", f"Agent '{run.agent_name}' has completed the task")
        emit(session, run.id, "run.output", f"Output: {output}")
        emit(session, run.id, "run.completed", f"{label} completed successfully")
    else:
        emit(session, run.id, f"run.{status.lower()}", f"{label} {status.lower()}: {error}",
             level="ERROR" if status == st.FAILED else "WARN")
    return [Next("deliver_result", (run.id,))] if run.parent_call_id else []
