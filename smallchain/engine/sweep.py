"""The sweeper: finds work whose state says a step is due but which has not moved, and re-enqueues it.

It covers a process dying between commit and enqueue, and a broker that lost its queues.
Every step is idempotent, so re-enqueueing something that is in fact still queued is harmless.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from smallchain import status as st
from smallchain.engine.effects import Next
from smallchain.store.db import Database
from smallchain.store.schema import Run, ToolCallRow, utcnow

Call = st.Call


def due_steps(db: Database, stale_after: float, tool_timeout: float) -> list[Next]:
    now = utcnow()
    stale = now - timedelta(seconds=stale_after)
    steps: list[Next] = []
    with db.transaction() as session:
        for run_id, step in session.execute(
            select(Run.id, Run.step).where(Run.phase == st.PHASE_LLM, Run.status.in_(st.ACTIVE),
                                           Run.updated_at < stale)
        ):
            steps.append(Next("llm_turn", (run_id, step)))
        for call_id, kind in session.execute(
            select(ToolCallRow.id, ToolCallRow.kind).where(ToolCallRow.status == Call.PENDING,
                                                           ToolCallRow.updated_at < stale)
        ):
            steps.append(Next("start_child" if kind == "agent" else "execute_tool", (call_id,)))
        # A running call whose worker vanished: re-run it once its time is surely up.
        long_stale = now - timedelta(seconds=stale_after + tool_timeout)
        for (call_id,) in session.execute(
            select(ToolCallRow.id).where(ToolCallRow.status == Call.RUNNING, ToolCallRow.updated_at < long_stale)
        ):
            steps.append(Next("execute_tool", (call_id,)))
        for (child_id,) in session.execute(
            select(Run.id).join(ToolCallRow, ToolCallRow.id == Run.parent_call_id)
            .where(Run.status.in_(st.TERMINAL), ToolCallRow.status == Call.AWAITING_CHILD, Run.updated_at < stale)
        ):
            steps.append(Next("deliver_result", (child_id,)))
    return steps
