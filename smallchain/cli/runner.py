"""``smallchain run -f FILE``: apply a file and process its runs in this process, no broker needed.

Steps run on the embedded worker (:class:`smallchain.inprocess.InProcessDispatcher`) against the
configured database (SQLite in the current directory by default). Progress is printed from the
events table as it grows, so what is shown is exactly what ``get events --pretty`` shows later.

A run of the file that is still active from an earlier, interrupted ``run -f`` (the embedded
queue lives in memory only) is picked up again: whenever the embedded worker is idle while a run
of the file is unfinished, the steps that are due for it in the database are enqueued again. The
same covers a human's answer given from another terminal (``smallchain approve``, ...).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from smallchain import status as st
from smallchain.api import Smallchain
from smallchain.cli import queries
from smallchain.cli.output import echo, flush, pretty_event
from smallchain.engine import Next
from smallchain.engine.sweep import due_steps
from smallchain.engine.timers import expire_waiting
from smallchain.inprocess import InProcessDispatcher
from smallchain.store.schema import Run, ToolCallRow

POLL_SECONDS = 0.2
# While idle, how often the database is asked for due steps of the file's runs.
KICK_SECONDS = 1.0
# Progress lines are cut here; the outputs are printed in full at the end.
MESSAGE_LIMIT = 200


@dataclass
class Outcome:
    finished: bool
    errors: list[BaseException] = field(default_factory=list)


def _root_of_step(session: Session, step: Next) -> str | None:
    if step.step in ("llm_turn", "deliver_result"):
        run_id: str | None = str(step.args[0])
    else:
        run_id = session.scalar(select(ToolCallRow.run_id).where(ToolCallRow.id == str(step.args[0])))
    if run_id is None:
        return None
    return session.scalar(select(Run.root_run_id).where(Run.id == run_id))


def due_for(sc: Smallchain, roots: set[str]) -> list[Next]:
    """Steps due in the database for the trees of ``roots``.

    Only called while the embedded worker is idle, so nothing listed is in flight here; with
    idempotent steps, re-enqueueing one that another process is also doing is harmless. Waiting
    calls past their timeout are timed out first, as the beat sweeper would.
    """
    steps = expire_waiting(sc.db) + due_steps(sc.db, stale_after=0.5, tool_timeout=0)
    if not steps:
        return []
    with sc.db.transaction() as session:
        return [s for s in steps if _root_of_step(session, s) in roots]


def follow(sc: Smallchain, worker: InProcessDispatcher, roots: list[str], after_event: int,
           timeout: float, show_events: bool) -> Outcome:
    """Print the events of the roots' trees until every run in them is finished or time is up."""
    deadline = time.monotonic() + timeout
    root_set = set(roots)
    last_kick = 0.0
    seen_errors = 0
    waiting_told: set[str] = set()
    while True:
        scope = queries.scope_ids(sc.db, roots)
        done = queries.all_terminal(sc.db, scope)
        # Read after the status check: a run's last events commit with its final status.
        for event in queries.events(sc.db, after_event, scope):
            after_event = event.row.id
            if show_events:
                echo(pretty_event(event.row.ts, event.row.level, event.row.message, limit=MESSAGE_LIMIT))
        flush()
        if done:
            return Outcome(True)
        if len(worker.errors) > seen_errors:
            return Outcome(False, list(worker.errors))
        now = time.monotonic()
        if now >= deadline:
            return Outcome(False)
        if now - last_kick >= KICK_SECONDS and worker.wait_idle(0):
            last_kick = now
            steps = due_for(sc, root_set)
            if steps:
                worker.dispatch(steps)
            elif show_events:
                _tell_waiting(sc, scope, waiting_told)
        time.sleep(POLL_SECONDS)


def _tell_waiting(sc: Smallchain, scope: set[str], told: set[str]) -> None:
    with sc.db.transaction() as session:
        waiting = session.execute(
            select(ToolCallRow.id, ToolCallRow.name, ToolCallRow.status)
            .where(ToolCallRow.run_id.in_(scope), ToolCallRow.status.in_(st.Call.WAITING))
        ).all()
    for call_id, name, status in waiting:
        if call_id not in told:
            told.add(call_id)
            echo(f"... tool call {call_id} ({name}) is {status}; see `smallchain get toolcalls --waiting`")


def hard_exit(code: int) -> NoReturn:
    """Leave now, without waiting for in-flight steps: the database keeps everything to resume."""
    with contextlib.suppress(OSError, ValueError):  # stdout may be a closed pipe
        flush()
    os._exit(code)
