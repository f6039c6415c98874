"""Sending steps to their queues through Celery."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from smallchain.engine.effects import Next


class CeleryDispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def dispatch(self, steps: Sequence[Next]) -> None:
        for step in steps:
            self.app.send_task(f"smallchain.{step.step}", args=list(step.args), queue=step.queue)
