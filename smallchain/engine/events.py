"""Human-readable events, written in the same transaction as the change they describe."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from smallchain.store.schema import EventRow


def emit(session: Session, run_id: str | None, kind: str, message: str, level: str = "INFO", **data: Any) -> None:
    session.add(EventRow(run_id=run_id, kind=kind, message=message, level=level, data=data))
