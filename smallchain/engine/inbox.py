"""Messages sent to a run while it works (steering): held in ``inbox`` until its next LLM turn."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from smallchain import status as st
from smallchain.engine import window
from smallchain.engine.events import emit
from smallchain.messages import UserMessage
from smallchain.store.schema import InboxRow, Run, utcnow


def has_undelivered(session: Session, run_id: str) -> bool:
    return session.scalar(
        select(InboxRow.id).where(InboxRow.run_id == run_id, InboxRow.delivered_at.is_(None)).limit(1)
    ) is not None


def deliver(session: Session, run_id: str, step: int) -> int:
    """Move the run's undelivered messages into its window, before turn ``step`` reads it.

    Returns how many were delivered. Takes the run row first (as every window writer does), so
    the appended sequence numbers cannot collide with a concurrent commit of the same turn.
    """
    if not has_undelivered(session, run_id):
        return 0
    held = session.execute(
        update(Run).where(Run.id == run_id, Run.phase == st.PHASE_LLM, Run.step == step)
        .values(updated_at=utcnow())
    )
    if held.rowcount != 1:  # type: ignore[attr-defined]
        return 0
    rows = session.scalars(
        select(InboxRow).where(InboxRow.run_id == run_id, InboxRow.delivered_at.is_(None)).order_by(InboxRow.id)
    ).all()
    delivered: list[InboxRow] = []
    now = utcnow()
    for row in rows:
        # Conditional, so two deliveries of the same turn cannot both move a message.
        moved = session.execute(
            update(InboxRow).where(InboxRow.id == row.id, InboxRow.delivered_at.is_(None)).values(delivered_at=now)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            delivered.append(row)
    if delivered:
        window.append(session, run_id, step, [UserMessage(content=r.content) for r in delivered])
        emit(session, run_id, "run.message_delivered",
             f"{len(delivered)} message(s) sent to the run delivered to the agent", count=len(delivered))
    return len(delivered)
