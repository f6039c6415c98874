"""Appending to and reading a run's context window (append-only, ordered by seq)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smallchain.messages import ChatMessage
from smallchain.store.schema import MessageRow


def append(session: Session, run_id: str, step: int, messages: Sequence[ChatMessage]) -> None:
    """Callers hold the run row (conditional UPDATE first), so no other writer races on seq."""
    last = session.scalar(select(func.max(MessageRow.seq)).where(MessageRow.run_id == run_id))
    seq = -1 if last is None else last
    for message in messages:
        seq += 1
        session.add(MessageRow(run_id=run_id, seq=seq, step=step, role=message.role,
                               message=message.model_dump(exclude_none=True)))


def read(session: Session, run_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(select(MessageRow.message).where(MessageRow.run_id == run_id).order_by(MessageRow.seq))
    return list(rows)
