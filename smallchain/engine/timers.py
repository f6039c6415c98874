"""Timeouts of waiting tool calls: a periodic check (beat's sweep), never a broker ETA.

A call that enters awaiting_approval, awaiting_human or awaiting_callback gets ``timeout_at`` when
its tool has a ``timeout``; once that passes, the call completes as timed_out and the run moves on.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from smallchain import status as st
from smallchain.engine.calls import complete_call
from smallchain.engine.effects import Next
from smallchain.engine.snapshot import AgentSnapshot
from smallchain.spec import ToolSpec
from smallchain.store.db import Database
from smallchain.store.schema import Run, ToolCallRow, utcnow

log = logging.getLogger(__name__)

Call = st.Call

_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(seconds: float) -> str:
    """``2d``, ``30s``, ``90m``: the largest unit that divides the duration exactly."""
    if seconds > 0 and float(seconds).is_integer():
        for unit, size in _UNITS:
            if int(seconds) % size == 0:
                return f"{int(seconds) // size}{unit}"
    return f"{seconds:g}s"


def deadline(tool: ToolSpec | None, now: datetime | None = None) -> datetime | None:
    """When a call of ``tool`` that starts waiting now times out (None: it waits for ever)."""
    if tool is None or tool.timeout is None:
        return None
    return (now or utcnow()) + timedelta(seconds=tool.timeout)


def expire_waiting(db: Database, limit: int = 500) -> list[Next]:
    """Complete waiting calls whose ``timeout_at`` has passed; returns the resumed runs' steps."""
    now = utcnow()
    with db.transaction() as session:
        due = session.execute(
            select(ToolCallRow.id, ToolCallRow.status)
            .where(ToolCallRow.status.in_(Call.WAITING), ToolCallRow.timeout_at.is_not(None),
                   ToolCallRow.timeout_at <= now)
            .order_by(ToolCallRow.timeout_at).limit(limit)
        ).all()
    steps: list[Next] = []
    for call_id, status in due:
        # One transaction per call: one broken run must not hold back the others' timeouts.
        try:
            with db.transaction() as session:
                call = session.get(ToolCallRow, call_id)
                run = None if call is None else session.get(Run, call.run_id)
                if call is None or run is None:
                    continue
                snapshot = AgentSnapshot.model_validate(run.agent)
                tool = snapshot.tool(call.name)
                allowed = format_duration(tool.timeout) if tool and tool.timeout else "the time allowed"
                error = snapshot.prompts.timed_out.format(timeout=allowed)
                # From the status seen: a call that moved on meanwhile (approved, answered) is not touched.
                steps += complete_call(session, call_id, Call.TIMED_OUT, error=error, from_statuses=(status,))[1]
        except Exception:
            log.exception("could not time out tool call %s", call_id)
    return steps
