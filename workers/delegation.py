"""Worker for the `delegation` queue: `python -m workers.delegation` (extra arguments go to `celery worker`)."""

from __future__ import annotations

import sys

from workers.common import run_worker

if __name__ == "__main__":
    run_worker(queue="delegation", pool="threads", concurrency=8, extra=sys.argv[1:])
