"""Applying a manifest: create or update resources by name; start each named run once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from smallchain.engine.effects import Next
from smallchain.engine.runs import insert_run, new_run_id
from smallchain.engine.snapshot import resolve_agent
from smallchain.spec import Manifest, TaskSpec
from smallchain.store.schema import Resource, Run, utcnow

KINDS = {"llms": "llm", "agents": "agent", "tools": "tool", "tasks": "task"}


@dataclass
class ApplyResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    runs_started: list[str] = field(default_factory=list)
    runs_existing: list[str] = field(default_factory=list)


def known_names(session: Session) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {kind: set() for kind in KINDS.values()}
    for kind, name in session.execute(select(Resource.kind, Resource.name)):
        names.setdefault(kind, set()).add(name)
    return names


def upsert(session: Session, manifest: Manifest, result: ApplyResult) -> None:
    for section, kind in KINDS.items():
        for item in getattr(manifest, section):
            spec: dict[str, Any] = item.model_dump(mode="json", exclude_defaults=True)
            row = session.get(Resource, (kind, item.name))
            label = f"{kind}/{item.name}"
            if row is None:
                session.add(Resource(kind=kind, name=item.name, spec=spec))
                result.created.append(label)
            elif row.spec != spec:
                row.spec = spec
                row.updated_at = utcnow()
                result.updated.append(label)
            else:
                result.unchanged.append(label)
    session.flush()


def task_spec(session: Session, name: str) -> TaskSpec:
    row = session.get(Resource, ("task", name))
    if row is None:
        raise LookupError(f"task {name!r} is not defined (apply a file that defines it)")
    return TaskSpec.model_validate(row.spec)


def start_run(
    session: Session, *, agent: str, user_message: str, name: str | None = None, task_name: str | None = None
) -> tuple[str, Next]:
    if name is not None and session.scalar(select(Run.id).where(Run.name == name)) is not None:
        raise ValueError(f"a run named {name!r} already exists")
    snapshot = resolve_agent(session, agent)
    run_id = new_run_id()
    return run_id, insert_run(session, run_id, snapshot, user_message, name=name, task_name=task_name)
