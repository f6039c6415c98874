"""The embedded worker: the same steps as the Celery tasks, run on threads in this process.

Used by ``smallchain run`` so the quickstart needs no Redis. Queued steps live only in memory;
the database still holds everything needed to pick a run up again (``smallchain sweep``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from smallchain.engine import Engine, Next
from smallchain.llm import TransientLLMError

log = logging.getLogger(__name__)


class InProcessDispatcher:
    def __init__(self, engine: Engine, threads: int = 8) -> None:
        self._engine = engine
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="smallchain")
        self._inflight = 0
        self._idle = threading.Condition()
        self.errors: list[BaseException] = []

    def dispatch(self, steps: Sequence[Next]) -> None:
        for step in steps:
            with self._idle:
                self._inflight += 1
            self._pool.submit(self._run, step)

    def _run(self, step: Next) -> None:
        try:
            self.dispatch(self._perform(step))
        except BaseException as exc:  # surfaced to the caller of wait_idle, never swallowed
            log.exception("step %s%s failed", step.step, step.args)
            self.errors.append(exc)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _perform(self, step: Next) -> list[Next]:
        settings = self._engine.settings
        for attempt in range(settings.llm_task_retries + 1):
            try:
                return self._engine.perform(step)
            except TransientLLMError as exc:
                if attempt == settings.llm_task_retries:
                    return self._engine.give_up_turn(str(step.args[0]), int(step.args[1]), str(exc))
                time.sleep(min(settings.llm_retry_backoff * 2**attempt, 60))
        return []

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout)

    def close(self, wait: bool = True) -> None:
        """Stop; with ``wait=False`` queued steps are dropped (the database still has them: sweep)."""
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
