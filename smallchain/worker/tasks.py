"""One Celery task per step. Each loads its state by id, commits, then enqueues its successors."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Task
from celery.signals import worker_process_init

from smallchain.engine import Engine, Next
from smallchain.llm import TransientLLMError
from smallchain.settings import get_settings
from smallchain.store.db import Database
from smallchain.worker.app import app
from smallchain.worker.dispatch import CeleryDispatcher

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def engine() -> Engine:
    settings = get_settings()
    return Engine(Database(settings.database_url), settings)


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # A forked child must not share the parent's pooled database connections.
    engine.cache_clear()


dispatcher = CeleryDispatcher(app)


@app.task(name="smallchain.llm_turn", bind=True, max_retries=None)
def llm_turn(self: Task, run_id: str, step: int) -> None:
    eng = engine()
    try:
        successors = eng.perform(Next("llm_turn", (run_id, step)))
    except TransientLLMError as exc:
        settings = eng.settings
        if self.request.retries < settings.llm_task_retries:
            # Below the visibility timeout, or Redis would re-deliver the waiting message as well.
            countdown = min(settings.llm_retry_backoff * 2**self.request.retries, settings.visibility_timeout / 2)
            log.warning("LLM unavailable for run %s turn %s, retrying in %.0fs: %s", run_id, step, countdown, exc)
            raise self.retry(countdown=countdown, exc=exc) from exc
        successors = eng.give_up_turn(run_id, step, str(exc))
    dispatcher.dispatch(successors)


@app.task(name="smallchain.execute_tool")
def execute_tool(call_id: str) -> None:
    dispatcher.dispatch(engine().perform(Next("execute_tool", (call_id,))))


@app.task(name="smallchain.start_child")
def start_child(call_id: str) -> None:
    dispatcher.dispatch(engine().perform(Next("start_child", (call_id,))))


@app.task(name="smallchain.deliver_result")
def deliver_result(child_run_id: str) -> None:
    dispatcher.dispatch(engine().perform(Next("deliver_result", (child_run_id,))))


@app.task(name="smallchain.notify")
def notify(call_id: str) -> None:
    dispatcher.dispatch(engine().perform(Next("notify", (call_id,))))


@app.task(name="smallchain.sweep")
def sweep() -> int:
    steps = engine().due_steps()
    if steps:
        log.info("sweeper re-enqueued %d stalled steps", len(steps))
    dispatcher.dispatch(steps)
    return len(steps)
