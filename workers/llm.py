"""Worker for the `llm` queue: `python -m workers.llm` (extra arguments go to `celery worker`)."""

from __future__ import annotations

import sys

from workers.common import run_worker

if __name__ == "__main__":
    run_worker(queue="llm", pool="threads", concurrency=32, extra=sys.argv[1:])
