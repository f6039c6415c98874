"""Read-side queries behind ``get`` and ``describe``: runs as trees, events, tool calls, resources.

Rows are returned detached (read in a short transaction), so callers may print at leisure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from smallchain import status as st
from smallchain.cli.output import duration_ms, iso
from smallchain.spec import AgentRef, AgentSpec, ToolSpec
from smallchain.store.db import Database
from smallchain.store.schema import EventRow, LLMCallRow, Resource, Run, ToolCallRow

RESOURCE_KINDS = {"llms": "llm", "agents": "agent", "tools": "tool", "tasks": "task"}


def _detached(session: Session, rows: Iterable[Any]) -> list[Any]:
    rows = list(rows)
    for row in rows:
        session.expunge(row)
    return rows


# --- runs -------------------------------------------------------------------------------------------


def tree_order(runs: list[Run]) -> list[Run]:
    """Roots by creation time, each followed by its descendants (depth first, by creation time)."""
    by_parent: dict[str | None, list[Run]] = {}
    ids = {r.id for r in runs}
    for run in sorted(runs, key=lambda r: (r.created_at, r.id)):
        parent = run.parent_run_id if run.parent_run_id in ids else None
        by_parent.setdefault(parent, []).append(run)
    ordered: list[Run] = []

    def visit(parent: str | None) -> None:
        for child in by_parent.get(parent, []):
            ordered.append(child)
            visit(child.id)

    visit(None)
    return ordered


def all_runs(db: Database, roots_only: bool = False) -> list[Run]:
    with db.transaction() as session:
        query = select(Run)
        if roots_only:
            query = query.where(Run.parent_run_id.is_(None))
        return tree_order(_detached(session, session.scalars(query)))


def run_row(db: Database, run_id: str) -> Run:
    with db.transaction() as session:
        row = session.get(Run, run_id)
        if row is None:
            raise LookupError(f"run {run_id!r} no longer exists")
        session.expunge(row)
        return row


def subtree_ids(session: Session, run: Run) -> list[str]:
    """The run and all its descendants, parents before children."""
    family = session.execute(
        select(Run.id, Run.parent_run_id, Run.created_at).where(Run.root_run_id == run.root_run_id)
    ).all()
    children: dict[str, list[tuple[Any, str]]] = {}
    for run_id, parent, created in family:
        if parent is not None:
            children.setdefault(parent, []).append((created, run_id))
    ordered = [run.id]
    i = 0
    while i < len(ordered):
        ordered += [rid for _, rid in sorted(children.get(ordered[i], []), key=lambda c: (c[0], c[1]))]
        i += 1
    return ordered


def subtree(db: Database, run_id: str) -> list[Run]:
    """The run and its descendants, in tree order."""
    with db.transaction() as session:
        root = session.get(Run, run_id)
        if root is None:
            return []
        ids = set(subtree_ids(session, root))
        rows = session.scalars(select(Run).where(Run.root_run_id == root.root_run_id)).all()
        chosen = [r for r in rows if r.id in ids]
        ordered = tree_order(_detached(session, chosen))
    return ordered


def scope_ids(db: Database, run_ids: Iterable[str]) -> set[str]:
    """The given runs and all their descendants."""
    found: set[str] = set()
    with db.transaction() as session:
        for run_id in run_ids:
            run = session.get(Run, run_id)
            if run is not None:
                found.update(subtree_ids(session, run))
    return found


def all_terminal(db: Database, run_ids: set[str] | None) -> bool:
    """Whether every run in scope (``None``: every run in the database) is finished."""
    with db.transaction() as session:
        query = select(func.count()).select_from(Run).where(Run.status.in_(st.ACTIVE))
        if run_ids is not None:
            if not run_ids:
                return True
            query = query.where(Run.id.in_(run_ids))
        return (session.scalar(query) or 0) == 0


def run_label(run: Run) -> str:
    return run.name or run.id[:8]


def run_view(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "task": run.task_name,
        "agent": run.agent_name,
        "status": run.status,
        "output": run.output,
        "error": run.error,
        "depth": run.depth,
        "parent_id": run.parent_run_id,
        "root_id": run.root_run_id,
        "step": run.step,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "finished_at": iso(run.finished_at),
    }


def delete_tree(db: Database, run_id: str) -> int:
    """Delete a run; its child runs, messages, tool calls, LLM calls and events go with it (ON DELETE CASCADE)."""
    with db.transaction() as session:
        root = session.get(Run, run_id)
        if root is None:
            return 0
        count = len(subtree_ids(session, root))
        session.execute(delete(Run).where(Run.id == run_id))
        return count


# --- events -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    row: EventRow
    run_name: str | None

    def view(self) -> dict[str, Any]:
        row = self.row
        return {"id": row.id, "ts": iso(row.ts), "level": row.level, "kind": row.kind, "run_id": row.run_id,
                "run": self.run_name, "message": row.message, "data": row.data}


def events(db: Database, after_id: int = 0, run_ids: set[str] | None = None, limit: int = 1000) -> list[Event]:
    """Events with id above ``after_id``, oldest first; only those of ``run_ids`` when given."""
    if run_ids is not None and not run_ids:
        return []
    with db.transaction() as session:
        query = (
            select(EventRow, Run.name).outerjoin(Run, Run.id == EventRow.run_id)
            .where(EventRow.id > after_id).order_by(EventRow.id).limit(limit)
        )
        if run_ids is not None:
            query = query.where(EventRow.run_id.in_(run_ids))
        found = []
        for row, name in session.execute(query).all():
            session.expunge(row)
            found.append(Event(row, name))
        return found


def last_event_id(db: Database) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.max(EventRow.id))) or 0


# --- tool calls -------------------------------------------------------------------------------------


def tool_calls(db: Database, run_ids: set[str] | None = None, waiting: bool = False) -> list[tuple[ToolCallRow, Run]]:
    with db.transaction() as session:
        query = (select(ToolCallRow, Run).join(Run, Run.id == ToolCallRow.run_id)
                 .order_by(ToolCallRow.created_at, ToolCallRow.run_id, ToolCallRow.step, ToolCallRow.ordinal))
        if run_ids is not None:
            query = query.where(ToolCallRow.run_id.in_(run_ids))
        if waiting:
            query = query.where(ToolCallRow.status.in_(st.Call.WAITING))
        pairs = session.execute(query).all()
        result = []
        for call, run in pairs:
            session.expunge(call)
            if run in session:
                session.expunge(run)
            result.append((call, run))
        return result


def parsed_arguments(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def tool_call_view(call: ToolCallRow, run: Run | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": call.id,
        "run_id": call.run_id,
    }
    if run is not None:
        view["run"] = run.name
        view["agent"] = run.agent_name
    view.update({
        "step": call.step,
        "ordinal": call.ordinal,
        "llm_call_id": call.llm_call_id,
        "name": call.name,
        "kind": call.kind,
        "arguments": parsed_arguments(call.arguments),
        "status": call.status,
        "result": call.result,
        "error": call.error,
        "child_run_id": call.child_run_id,
        "attempts": call.attempts,
        "created_at": iso(call.created_at),
        "started_at": iso(call.started_at),
        "finished_at": iso(call.finished_at),
        "duration_ms": duration_ms(call.started_at or call.created_at, call.finished_at),
    })
    return view


# --- LLM calls --------------------------------------------------------------------------------------


def llm_calls(db: Database, run_ids: Iterable[str]) -> list[LLMCallRow]:
    with db.transaction() as session:
        rows = session.scalars(
            select(LLMCallRow).where(LLMCallRow.run_id.in_(list(run_ids))).order_by(LLMCallRow.created_at)
        )
        return _detached(session, rows)


# --- resources --------------------------------------------------------------------------------------


def resources(db: Database, kind: str, name: str | None = None) -> list[Resource]:
    with db.transaction() as session:
        query = select(Resource).where(Resource.kind == kind).order_by(Resource.name)
        if name is not None:
            query = query.where(Resource.name == name)
        return _detached(session, session.scalars(query))


def resource_row(kind: str, resource: Resource) -> list[str]:
    """Table cells after NAME for one applied resource."""
    from smallchain.cli.output import NONE, one_line

    spec = resource.spec
    if kind == "llm":
        return [spec.get("provider", "openai"), spec.get("model") or NONE]
    if kind == "agent":
        agent = AgentSpec.model_validate(spec)
        tools = [f"{t.agent} (agent)" if isinstance(t, AgentRef) else t for t in agent.tools]
        return [agent.llm or NONE, ", ".join(tools) or NONE]
    if kind == "tool":
        try:
            tool_kind: str = ToolSpec.model_validate(spec).kind
        except ValueError:
            tool_kind = "?"
        return [tool_kind, one_line(spec.get("description"), 60)]
    return [spec.get("agent", NONE), one_line(spec.get("user_message"), 60)]


RESOURCE_HEADERS = {
    "llm": ["PROVIDER", "MODEL"],
    "agent": ["LLM", "TOOLS"],
    "tool": ["KIND", "DESCRIPTION"],
    "task": ["AGENT", "USER MESSAGE"],
}
