"""Cancelling a run: open calls get a cancellation result, so the window stays a valid chat history."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from smallchain import status as st
from smallchain.engine import runs, window
from smallchain.engine.calls import tool_results
from smallchain.engine.effects import Next
from smallchain.engine.snapshot import AgentSnapshot
from smallchain.store.schema import Run, ToolCallRow, utcnow

Call = st.Call


def cancel(session: Session, run: Run, reason: str) -> list[Next]:
    if run.status not in st.ACTIVE:
        return []
    steps: list[Next] = []
    if run.phase == st.PHASE_TOOLS:
        turn = run.step - 1
        calls = session.scalars(
            select(ToolCallRow).where(ToolCallRow.run_id == run.id, ToolCallRow.step == turn)
            .order_by(ToolCallRow.ordinal)
        ).all()
        for call in calls:
            if call.status in Call.OPEN:
                session.execute(
                    update(ToolCallRow).where(ToolCallRow.id == call.id, ToolCallRow.status.in_(Call.OPEN))
                    .values(status=Call.CANCELLED, error=reason, finished_at=utcnow(), updated_at=utcnow())
                )
                if call.child_run_id:
                    child = session.get(Run, call.child_run_id)
                    if child is not None:
                        steps += cancel(session, child, f"parent run {run.id[:8]} was cancelled")
        session.flush()
        prompts = AgentSnapshot.model_validate(run.agent).prompts
        for call in calls:
            session.refresh(call)
        window.append(session, run.id, turn, tool_results(calls, prompts))
    steps += runs.finish(session, run, st.CANCELLED, error=reason)
    # Children cancelled with us report to calls that are already closed: nothing to deliver.
    return [s for s in steps if not (s.step == "deliver_result" and s.args[0] != run.id)]
