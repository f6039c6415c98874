"""Worker for the `tools` queue: `python -m workers.tools` (extra arguments go to `celery worker`)."""

from __future__ import annotations

import sys

from workers.common import run_worker

if __name__ == "__main__":
    run_worker(queue="tools", pool="prefork", concurrency=4, extra=sys.argv[1:])
