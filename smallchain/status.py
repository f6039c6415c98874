"""Run and tool-call states."""

from __future__ import annotations

from typing import Final

PENDING: Final = "Pending"
RUNNING: Final = "Running"
WAITING: Final = "Waiting"
SUCCEEDED: Final = "Succeeded"
FAILED: Final = "Failed"
CANCELLED: Final = "Cancelled"

ACTIVE = (PENDING, RUNNING, WAITING)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)

# Run phases (internal): which step moves the run next.
PHASE_LLM: Final = "llm"
PHASE_TOOLS: Final = "tools"
PHASE_DONE: Final = "done"


class Call:
    """Tool-call statuses."""

    PENDING: Final = "pending"  # ready for a worker
    RUNNING: Final = "running"
    AWAITING_APPROVAL: Final = "awaiting_approval"
    AWAITING_HUMAN: Final = "awaiting_human"
    AWAITING_CALLBACK: Final = "awaiting_callback"
    AWAITING_CHILD: Final = "awaiting_child"
    SUCCEEDED: Final = "succeeded"
    FAILED: Final = "failed"
    REJECTED: Final = "rejected"
    TIMED_OUT: Final = "timed_out"
    CANCELLED: Final = "cancelled"

    # Waiting on a person or the outside world: no worker holds these.
    WAITING = (AWAITING_APPROVAL, AWAITING_HUMAN, AWAITING_CALLBACK)
    OPEN = (PENDING, RUNNING, AWAITING_APPROVAL, AWAITING_HUMAN, AWAITING_CALLBACK, AWAITING_CHILD)
    DONE = (SUCCEEDED, FAILED, REJECTED, TIMED_OUT, CANCELLED)
