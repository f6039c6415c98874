"""Step logic, free of Celery: each step reads state by id, commits once, and names its successors."""

from __future__ import annotations

from smallchain.engine import calls, delegation, sweep, timers, turn, webhook
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
            return turn.run_turn(self.db, str(args[0]), int(args[1]), self.settings.max_steps,
                                 notify_url=self.settings.notify_url)
        if step.step == "execute_tool":
            return calls.execute_tool(self.db, str(args[0]), self.settings.tool_timeout,
                                      public_url=self.settings.public_url)
        if step.step == "start_child":
            return delegation.start_child(self.db, str(args[0]), self.settings.max_depth)
        if step.step == "deliver_result":
            return delegation.deliver_result(self.db, str(args[0]))
        if step.step == "notify":
            return webhook.notify(self.db, str(args[0]), self.settings.notify_url, self.settings.public_url,
                                  self.settings.tool_timeout)
        raise ValueError(f"unknown step {step.step!r}")

    def give_up_turn(self, run_id: str, step: int, error: str) -> list[Next]:
        """Fail a run whose LLM stayed unavailable through every retry."""
        return turn.fail(self.db, run_id, step, None, f"{error} (gave up after retries)")

    def due_steps(self) -> list[Next]:
        # Waiting calls past their timeout complete as timed_out (the beat task and sc.sweep() come here).
        expired = timers.expire_waiting(self.db)
        return sweep.due_steps(self.db, self.settings.sweep_stale_after, self.settings.tool_timeout) + expired
