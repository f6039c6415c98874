"""The Celery application. Start workers with ``celery -A smallchain.worker.app worker -Q llm`` (or the CLI).

Durability settings, and why:
- acks_late + reject_on_worker_lost: a worker killed mid-step (even SIGKILL) gets its message re-delivered;
  each step is idempotent, so a re-delivery of a committed step does nothing.
- prefetch 1: a slow LLM call must not hold other runs' steps hostage in its prefetch buffer.
- visibility_timeout: how long Redis waits to re-deliver an unacked message; countdowns stay below it.
  A worker killed outright (not just its pool child) has its messages restored after this timeout.
"""

from __future__ import annotations

from celery import Celery

from smallchain.engine.effects import QUEUE_OF
from smallchain.settings import Settings, get_settings


def make_app(settings: Settings) -> Celery:
    app = Celery("smallchain", broker=settings.broker_url, include=["smallchain.worker.tasks"])
    routes = {f"smallchain.{step}": {"queue": queue} for step, queue in QUEUE_OF.items()}
    routes["smallchain.sweep"] = {"queue": "delegation"}
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_routes=routes,
        task_default_queue="delegation",
        task_send_sent_event=True,
        worker_send_task_events=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            # kombu scans for messages abandoned by dead workers every interval x throttle seconds
            # (100 s by default); tie it to the visibility timeout so recovery is prompt.
            "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 2)),
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
        beat_schedule={
            "smallchain-sweep": {"task": "smallchain.sweep", "schedule": float(settings.sweep_interval)},
        },
    )
    return app


app = make_app(get_settings())
