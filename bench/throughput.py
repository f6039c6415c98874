"""Throughput and latency of agent runs on real Celery workers, a private Redis and an instant fake LLM.

    .venv/bin/python bench/throughput.py [--runs 200] [--db sqlite|postgresql] [--concurrency 16]

Each run is three steps on three queues' worth of tasks: LLM turn (tool call), tool execution,
LLM turn (answer). The LLM answers at once, so the figures measure smallchain's own overhead:
broker round trips, database commits, and the openai SDK's HTTP client.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smallchain import Smallchain  # noqa: E402
from smallchain.settings import Settings  # noqa: E402
from tests.support.llm_server import FakeLLM, Reply, call, text, tool_calls, turn  # noqa: E402
from tests.support.services import PostgresSchemas, service_env, sqlite_url_for, start_redis  # noqa: E402
from tests.support.workers import Workers  # noqa: E402


def script(body: dict[str, Any]) -> Reply:
    return tool_calls(call("add", {"a": 1, "b": 2})) if turn(body) == 0 else text("3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="smallchain-bench-"))
    redis = start_redis(tmp / "redis")
    schemas = PostgresSchemas.connect() if args.db == "postgresql" else None
    db_url = schemas.fresh_url() if schemas else sqlite_url_for(tmp)
    workers = Workers(tmp / "workers")
    try:
        with FakeLLM(script) as llm:
            sc = Smallchain(settings=Settings(database_url=db_url, broker_url=redis.url))
            sc.apply({"llms": [{"name": "fake", "model": "fake", "base_url": llm.base_url}],
                      "agents": [{"name": "a", "system_prompt": "bench", "tools": ["add"]}]})
            workers.start(concurrency=args.concurrency, env=service_env(db_url, redis.url, llm))
            sc.enqueue(agent="a", user_message="warm up").wait(60)

            started = time.monotonic()
            handles = [sc.enqueue(agent="a", user_message=f"run {i}") for i in range(args.runs)]
            for handle in handles:
                handle.wait(600, interval=0.05)
            elapsed = time.monotonic() - started

            durations = []
            for handle in handles:
                row = handle.row
                assert row.status == "Succeeded", row.error
                assert row.finished_at is not None
                durations.append((row.finished_at - row.created_at).total_seconds())
            steps = args.runs * 3
            print(f"backend={args.db} runs={args.runs} worker_threads={args.concurrency}")
            print(f"wall={elapsed:.2f}s runs/s={args.runs / elapsed:.1f} steps/s={steps / elapsed:.1f}")
            durations.sort()
            print(f"run latency p50={statistics.median(durations) * 1000:.0f}ms "
                  f"p95={durations[int(len(durations) * 0.95) - 1] * 1000:.0f}ms (3 steps, queued behind others)")
            sc.close()
    finally:
        workers.stop_all()
        redis.stop()
        if schemas:
            schemas.cleanup()


if __name__ == "__main__":
    main()
