"""The Python API: apply resources, enqueue runs, read them back."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from smallchain import status as st
from smallchain.engine import Dispatcher, Engine, Next
from smallchain.engine.cancel import cancel as cancel_run
from smallchain.resources import ApplyResult, known_names, start_run, task_spec, upsert
from smallchain.settings import Settings
from smallchain.spec import Manifest
from smallchain.store.db import Database
from smallchain.store.schema import EventRow, LLMCallRow, MessageRow, Run, ToolCallRow

if TYPE_CHECKING:
    from smallchain.waits import WaitingCall


class RunNotFound(LookupError):
    pass


class RunTimeout(TimeoutError):
    pass


@dataclass(frozen=True)
class ToolCallView:
    id: str
    run_id: str
    step: int
    ordinal: int
    name: str
    arguments: str
    kind: str
    status: str
    result: str | None
    error: str | None
    child_run_id: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunHandle:
    """A run by id. Every property reads the database, so it is always current."""

    def __init__(self, sc: Smallchain, run_id: str) -> None:
        self._sc = sc
        self.id = run_id

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.status}>"

    def _row(self) -> Run:
        with self._sc.db.transaction() as session:
            row = session.get(Run, self.id)
            if row is None:
                raise RunNotFound(f"run {self.id!r} does not exist")
            session.expunge(row)
            return row

    @property
    def row(self) -> Run:
        return self._row()

    @property
    def status(self) -> str:
        return self._row().status

    @property
    def output(self) -> str | None:
        return self._row().output

    @property
    def error(self) -> str | None:
        return self._row().error

    @property
    def name(self) -> str | None:
        return self._row().name

    @property
    def depth(self) -> int:
        return self._row().depth

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The context window, exactly as the LLM receives it."""
        with self._sc.db.transaction() as session:
            return list(session.scalars(
                select(MessageRow.message).where(MessageRow.run_id == self.id).order_by(MessageRow.seq)
            ))

    @property
    def children(self) -> list[RunHandle]:
        with self._sc.db.transaction() as session:
            ids = session.scalars(select(Run.id).where(Run.parent_run_id == self.id).order_by(Run.created_at))
            return [RunHandle(self._sc, i) for i in ids]

    @property
    def tool_calls(self) -> list[ToolCallView]:
        with self._sc.db.transaction() as session:
            rows = session.scalars(
                select(ToolCallRow).where(ToolCallRow.run_id == self.id)
                .order_by(ToolCallRow.step, ToolCallRow.ordinal)
            ).all()
            return [ToolCallView(**{f: getattr(r, f) for f in ToolCallView.__dataclass_fields__}) for r in rows]

    @property
    def llm_calls(self) -> list[dict[str, Any]]:
        """Each committed LLM turn: the exact request, the response, tokens and latency."""
        window = self.messages
        with self._sc.db.transaction() as session:
            rows = session.scalars(
                select(LLMCallRow).where(LLMCallRow.run_id == self.id).order_by(LLMCallRow.step)
            ).all()
            return [
                {"step": r.step, "model": r.model, "response": r.response, "error": r.error,
                 "request": {**r.request, "messages": window[:r.window_size]} if r.request else {},
                 "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                 "latency_ms": r.latency_ms, "created_at": r.created_at}
                for r in rows
            ]

    @property
    def events(self) -> list[EventRow]:
        with self._sc.db.transaction() as session:
            rows = session.scalars(select(EventRow).where(EventRow.run_id == self.id).order_by(EventRow.id)).all()
            session.expunge_all()
            return list(rows)

    def wait(self, timeout: float = 60.0, interval: float = 0.1) -> RunHandle:
        """Block until the run is Succeeded, Failed or Cancelled (or raise RunTimeout)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status
            if status in st.TERMINAL:
                return self
            if time.monotonic() >= deadline:
                raise RunTimeout(f"run {self.id} is still {status} after {timeout:g}s")
            time.sleep(interval)


class Smallchain:
    """Entry point for services: ``Smallchain()`` reads SMALLCHAIN_DATABASE_URL and SMALLCHAIN_BROKER_URL."""

    def __init__(
        self,
        database_url: str | None = None,
        broker_url: str | None = None,
        *,
        settings: Settings | None = None,
        dispatcher: Dispatcher | None = None,
        migrate: bool = True,
    ) -> None:
        overrides = {k: v for k, v in (("database_url", database_url), ("broker_url", broker_url)) if v}
        self.settings = (settings or Settings()).model_copy(update=overrides)
        self.db = Database(self.settings.database_url)
        if migrate:
            self.db.migrate()
        self.engine = Engine(self.db, self.settings)
        self._dispatcher = dispatcher

    @classmethod
    def embedded(
        cls, database_url: str | None = None, *, settings: Settings | None = None, threads: int = 8
    ) -> Smallchain:
        """Steps run on threads of this process instead of Celery workers: no broker needed.

        ``sc.dispatcher`` is then an :class:`~smallchain.inprocess.InProcessDispatcher`
        (``wait_idle()``, ``close()``).
        """
        from smallchain.inprocess import InProcessDispatcher

        sc = cls(database_url, settings=settings)
        sc._dispatcher = InProcessDispatcher(sc.engine, threads=threads)
        return sc

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            # An app of our own, so this instance's broker_url is used whatever the environment says.
            from smallchain.worker.app import make_app
            from smallchain.worker.dispatch import CeleryDispatcher

            self._dispatcher = CeleryDispatcher(make_app(self.settings))
        return self._dispatcher

    def _dispatch(self, steps: list[Next]) -> None:
        if steps:
            self.dispatcher.dispatch(steps)

    # -- resources ---------------------------------------------------------------------------
    def apply(self, source: str | Path | Mapping[str, Any] | Manifest) -> ApplyResult:
        """Create or update llms, agents, tools and tasks by name; start each new entry of ``runs:``."""
        result = ApplyResult()
        steps: list[Next] = []
        with self.db.transaction() as session:
            if isinstance(source, Manifest):
                manifest = source
            else:
                from smallchain.manifest import load_manifest

                known = known_names(session)
                manifest = load_manifest(
                    source if isinstance(source, str | Path) else dict(source),
                    known_llms=known["llm"], known_agents=known["agent"],
                    known_tools=known["tool"], known_tasks=known["task"],
                )
            upsert(session, manifest, result)
            for run in manifest.runs:
                if session.scalar(select(Run.id).where(Run.name == run.name)) is not None:
                    result.runs_existing.append(run.name)
                    continue
                task = task_spec(session, run.task)
                _, first = start_run(session, agent=task.agent, user_message=task.user_message,
                                     name=run.name, task_name=task.name)
                steps.append(first)
                result.runs_started.append(run.name)
        self._dispatch(steps)
        return result

    # -- runs --------------------------------------------------------------------------------
    def enqueue(
        self, task: str | None = None, *, agent: str | None = None, user_message: str | None = None,
        name: str | None = None,
    ) -> RunHandle:
        """Start a run of a task (by name), or of an agent with a user message."""
        if (task is None) == (agent is None):
            raise ValueError("enqueue needs either a task name or agent= with user_message=")
        with self.db.transaction() as session:
            if task is not None:
                spec = task_spec(session, task)
                agent, message, task_name = spec.agent, user_message or spec.user_message, spec.name
            else:
                if not user_message:
                    raise ValueError("enqueue(agent=...) needs user_message=")
                message, task_name = user_message, None
            assert agent is not None
            run_id, first = start_run(session, agent=agent, user_message=message, name=name, task_name=task_name)
        self._dispatch([first])
        return RunHandle(self, run_id)

    def get_run(self, id_or_name: str) -> RunHandle:
        with self.db.transaction() as session:
            run_id = session.scalar(select(Run.id).where(or_(Run.id == id_or_name, Run.name == id_or_name)))
            if run_id is None:
                run_id = session.scalar(select(Run.id).where(Run.id.startswith(id_or_name)).limit(2)) \
                    if len(id_or_name) >= 6 else None
        if run_id is None:
            raise RunNotFound(f"no run with id or name {id_or_name!r}")
        return RunHandle(self, run_id)

    def runs(self, *, roots_only: bool = False) -> list[RunHandle]:
        with self.db.transaction() as session:
            query = select(Run.id).order_by(Run.created_at)
            if roots_only:
                query = query.where(Run.parent_run_id.is_(None))
            return [RunHandle(self, i) for i in session.scalars(query)]

    def cancel(self, id_or_name: str, reason: str = "cancelled by the user") -> RunHandle:
        handle = self.get_run(id_or_name)
        with self.db.transaction() as session:
            run = session.get(Run, handle.id)
            assert run is not None
            steps = cancel_run(session, run, reason)
        self._dispatch(steps)
        return handle

    def sweep(self) -> int:
        """Re-enqueue steps that should be in flight but have not moved (see the sweeper)."""
        steps = self.engine.due_steps()
        self._dispatch(steps)
        return len(steps)

    # -- waits: approvals, human answers, external callbacks, steering (smallchain.waits) ----
    def approve(self, call_id: str) -> str:
        """Let a call awaiting approval go ahead; returns its new status."""
        from smallchain import waits

        new_status, steps = waits.approve(self.db, call_id, self.settings.notify_url)
        self._dispatch(steps)
        return new_status

    def reject(self, call_id: str, reason: str) -> None:
        """Refuse a call awaiting approval; the LLM sees the ``rejected`` prompt with ``reason``."""
        from smallchain import waits

        self._dispatch(waits.reject(self.db, call_id, reason))

    def respond(self, call_id: str, text: str) -> None:
        """Answer a human tool's call (``human:``) with ``text``."""
        from smallchain import waits

        self._dispatch(waits.respond(self.db, call_id, text))

    def complete_tool_call(self, call_id: str, result: str | None = None, error: str | None = None,
                           token: str | None = None) -> str:
        """Complete a call waiting on an external system; without ``token`` the caller is trusted."""
        from smallchain import waits

        outcome, steps = waits.complete_external(self.db, call_id, token, result=result, error=error,
                                                 trusted=token is None)
        self._dispatch(steps)
        return outcome

    def waiting(self) -> list[WaitingCall]:
        """Every call waiting on a human or an external system: id, run, agent, tool, status, arguments,
        since and timeout_at."""
        from smallchain import waits

        return waits.waiting(self.db)

    def send(self, run_id: str, text: str) -> RunHandle:
        """A user message the agent sees at its next LLM turn; a finished run is resumed by it."""
        from smallchain import waits

        handle = self.get_run(run_id)
        self._dispatch(waits.send(self.db, handle.id, text))
        return handle

    def close(self) -> None:
        self.db.dispose()
