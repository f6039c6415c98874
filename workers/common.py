"""Shared start-up for the per-queue workers."""

from __future__ import annotations

import os

from smallchain.worker.app import app


def run_worker(queue: str, pool: str, concurrency: int, extra: list[str]) -> None:
    # Environment overrides let an operator resize a pool without editing code.
    pool = os.environ.get(f"SMALLCHAIN_{queue.upper()}_POOL", pool)
    concurrency = int(os.environ.get(f"SMALLCHAIN_{queue.upper()}_CONCURRENCY", concurrency))
    app.worker_main([
        "worker", "-Q", queue, "-P", pool, "-c", str(concurrency),
        "-n", f"{queue}@%h", "-E", "-l", os.environ.get("SMALLCHAIN_LOG_LEVEL", "INFO"), *extra,
    ])
