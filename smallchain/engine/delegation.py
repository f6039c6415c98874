"""Sub-agents: a call to an agent-tool starts a child run; the child's end completes the call."""

from __future__ import annotations

import json

from smallchain import status as st
from smallchain.engine import runs
from smallchain.engine.calls import complete_call
from smallchain.engine.effects import Next
from smallchain.engine.events import emit
from smallchain.engine.snapshot import AgentSnapshot, ResolveError, resolve_agent
from smallchain.store.db import Database
from smallchain.store.schema import Run, ToolCallRow

Call = st.Call


def start_child(db: Database, call_id: str, max_depth: int) -> list[Next]:
    with db.transaction() as session:
        call = session.get(ToolCallRow, call_id)
        if call is None or call.status != Call.PENDING:
            return []  # already started (a redelivery) or cancelled
        parent = session.get(Run, call.run_id)
        assert parent is not None
        if parent.status not in st.ACTIVE:
            return []
        if parent.depth + 1 > max_depth:
            return complete_call(session, call_id, Call.FAILED,
                                 error=f"cannot delegate to {call.name!r}: the delegation depth limit "
                                       f"({max_depth}) is reached")[1]
        tool = AgentSnapshot.model_validate(parent.agent).tool(call.name)
        assert tool is not None and tool.agent is not None
        try:
            snapshot = resolve_agent(session, tool.agent)
        except ResolveError as exc:
            return complete_call(session, call_id, Call.FAILED, error=str(exc))[1]
        child_id = runs.child_run_id(call_id)
        call.status = Call.AWAITING_CHILD
        call.child_run_id = child_id
        message = json.loads(call.arguments)["message"]
        first = runs.insert_run(session, child_id, snapshot, message, parent=parent, parent_call_id=call_id)
        emit(session, parent.id, "delegation.started",
             f"Agent '{parent.agent_name}' delegated to agent '{snapshot.name}' (run {child_id[:8]})",
             child_run_id=child_id, call_id=call_id)
        return [first]


def deliver_result(db: Database, child_run_id: str) -> list[Next]:
    """Hand a finished child's answer (or failure) to its parent's tool call."""
    with db.transaction() as session:
        child = session.get(Run, child_run_id)
        if child is None or child.status not in st.TERMINAL or child.parent_call_id is None:
            return []
        if child.status == st.SUCCEEDED:
            return complete_call(session, child.parent_call_id, Call.SUCCEEDED, result=child.output or "",
                                 from_statuses=(Call.AWAITING_CHILD,))[1]
        parent = session.get(Run, child.parent_run_id)
        assert parent is not None
        prompts = AgentSnapshot.model_validate(parent.agent).prompts
        error = prompts.child_failed.format(agent=child.agent_name, status=child.status.lower(),
                                            error=child.error or "no error given")
        return complete_call(session, child.parent_call_id, Call.FAILED, error=error,
                             from_statuses=(Call.AWAITING_CHILD,))[1]
