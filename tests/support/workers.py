"""Real Celery worker processes for end-to-end tests."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tests.support.services import REPO_ROOT, subprocess_env

CELERY_APP = "smallchain.worker.app"
DEFAULT_QUEUES = "llm,tools,delegation"
# Celery logs "<node name> ready." once it consumes; matching the node name avoids e.g. "already."
READY_PATTERN = "{name}@.* ready\\.$"

_names = itertools.count(1)


class WorkerError(RuntimeError):
    pass


class WorkerProcess:
    """``celery worker`` in its own session, so kill() takes pool children down with it."""

    def __init__(
        self,
        log_dir: Path,
        *,
        queues: str = DEFAULT_QUEUES,
        pool: str = "threads",
        concurrency: int = 8,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        app: str = CELERY_APP,
        extra_args: Sequence[str] = (),
    ) -> None:
        # Unique per process: Celery's control/broadcast replies are keyed by node name.
        self.name = name or f"sc-test-{os.getpid()}-{next(_names)}"
        self.queues = queues
        self.pool = pool
        self.concurrency = concurrency
        self.env = dict(env or {})
        self.app = app
        self.extra_args = list(extra_args)
        self.log_path = Path(log_dir) / f"worker-{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", self.app, "worker",
            "-Q", self.queues,
            "-P", self.pool,
            "-c", str(self.concurrency),
            "-n", f"{self.name}@%h",
            "-E",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-l", "INFO",
            *self.extra_args,
        ]

    @property
    def pid(self) -> int:
        if self.process is None:
            raise WorkerError(f"worker {self.name} was never started")
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, wait_ready: bool = True, timeout: float = 60.0) -> WorkerProcess:
        if self.process is not None:
            raise WorkerError(f"worker {self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                env=subprocess_env(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def is_ready(self) -> bool:
        pattern = READY_PATTERN.format(name=re.escape(self.name))
        return re.search(pattern, self.log_text(), re.MULTILINE) is not None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.is_ready():
                return
            code = self.returncode
            if code is not None:
                raise WorkerError(
                    f"worker {self.name} exited with code {code} before it was ready; "
                    f"log tail:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                self.kill()
                raise WorkerError(
                    f"worker {self.name} not ready after {timeout}s; log tail:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> int | None:
        """Warm shutdown (SIGTERM lets running tasks finish), SIGKILL if that takes too long."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._kill_group()
        return process.wait(timeout=10)

    def kill(self) -> int | None:
        """Hard crash of the worker and every process it started, as a node failure would be."""
        process = self.process
        if process is None:
            return None
        self._kill_group()
        return process.wait(timeout=10)

    def _kill_group(self) -> None:
        assert self.process is not None
        # The session leader's pid is the group id; children may outlive a dead leader.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> WorkerProcess:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "not started" if self.process is None else f"pid={self.process.pid} rc={self.returncode}"
        return f"<WorkerProcess {self.name} queues={self.queues} pool={self.pool} {state}>"


class Workers:
    """Factory behind the ``workers`` fixture; remembers every worker so teardown can stop them."""

    REQUIRED_ENV = ("SMALLCHAIN_DATABASE_URL", "SMALLCHAIN_BROKER_URL")

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[WorkerProcess] = []

    def start(
        self,
        queues: str = DEFAULT_QUEUES,
        pool: str = "threads",
        concurrency: int = 8,
        env: Mapping[str, str] | None = None,
        *,
        wait_ready: bool = True,
        name: str | None = None,
        app: str = CELERY_APP,
        extra_args: Sequence[str] = (),
    ) -> WorkerProcess:
        env = dict(env or {})
        missing = [k for k in self.REQUIRED_ENV if not env.get(k)]
        if missing:
            # Without them the worker would fall back to the defaults: the developer's own Redis.
            raise WorkerError(f"workers.start() needs env with {missing}; use service_env(...)")
        worker = WorkerProcess(
            self.log_dir, queues=queues, pool=pool, concurrency=concurrency, env=env, name=name,
            app=app, extra_args=extra_args,
        )
        self.started.append(worker)
        return worker.start(wait_ready=wait_ready)

    __call__ = start

    def stop_all(self) -> None:
        errors: list[str] = []
        for worker in reversed(self.started):
            try:
                worker.stop()
            except Exception as exc:
                errors.append(f"{worker.name}: {exc}")
        if errors:
            raise WorkerError("could not stop workers: " + "; ".join(errors))

    def report(self, lines: int = 80) -> list[tuple[str, str]]:
        """(title, log tail) per worker, for the failure report of a test."""
        return [
            (f"worker {w.name} ({w.queues}, rc={w.returncode}) log", w.log_tail(lines) or "<empty>")
            for w in self.started
        ]
