"""Step logic, free of Celery: each step reads state by id, commits once, and names its successors."""

from __future__ import annotations

from smallchain.engine import calls, delegation, sweep, turn
from smallchain.engine.effects import QUEUE_OF, Dispatcher, Next
from smallchain.settings import Settings
from smallchain.store.db import Database

__all__ = ["QUEUE_OF", "Dispatcher", "Engine", "Next"]


class Engine:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def perform(self, step: Next) -> list[Next]:
        """Run one step. A TransientLLMError from an LLM turn propagates for the caller to retry."""
        args = step.args
        if step.step == "llm_turn":
            return turn.run_turn(self.db, str(args[0]), int(args[1]), self.settings.max_steps)
        if step.step == "execute_tool":
            return calls.execute_tool(self.db, str(args[0]), self.settings.tool_timeout)
        if step.step == "start_child":
            return delegation.start_child(self.db, str(args[0]), self.settings.max_depth)
        if step.step == "deliver_result":
            return delegation.deliver_result(self.db, str(args[0]))
        raise ValueError(f"unknown step {step.step!r}")

    def give_up_turn(self, run_id: str, step: int, error: str) -> list[Next]:
        """Fail a run whose LLM stayed unavailable through every retry."""
        return turn.fail(self.db, run_id, step, None, f"{error} (gave up after retries)")

    def due_steps(self) -> list[Next]:
        return sweep.due_steps(self.db, self.settings.sweep_stale_after, self.settings.tool_timeout)
