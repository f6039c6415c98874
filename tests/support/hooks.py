"""Helpers for the waits tests: a webhook receiver that records what it is sent, the smallchain
HTTP service (FastAPI) served by a real uvicorn on loopback in a thread, and an in-process
deployment (the engine's steps on threads, no broker) against a real database and the fake LLM."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import uvicorn

from smallchain import Smallchain
from smallchain.api import RunHandle
from smallchain.engine import Engine
from smallchain.inprocess import InProcessDispatcher
from smallchain.settings import Settings
from smallchain.store.db import Database
from tests.support.llm_server import FakeLLM
from tests.support.services import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """Records every POST; answers with ``statuses`` in turn (then 200). ``on_post`` runs before the answer."""

    def __init__(self, statuses: list[int] | None = None,
                 on_post: Callable[[Received], None] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.on_post = on_post
        self.received: list[Received] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                item = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw or b"null"))
                with receiver._lock:
                    receiver.received.append(item)
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.on_post is not None:
                    try:
                        receiver.on_post(item)
                    except BaseException as exc:  # reported by the test, not lost in this thread
                        receiver.errors.append(exc)
                data = b'{"ok": true}' if status < 300 else b'{"error": "scripted failure"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                got = list(self.received)
            if len(got) >= n:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(f"webhook receiver: expected {n} POSTs within {timeout}s, got {len(got)}")
            time.sleep(0.02)


class ServerThread:
    """A real uvicorn serving ``app`` on 127.0.0.1 (a free port unless given)."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() >= deadline:
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Local:
    sc: Smallchain
    llm: FakeLLM
    dispatcher: InProcessDispatcher
    tmp: Path
    steps_db: Database  # the in-process steps' own connection pool

    def apply(self, agents: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> None:
        llm = {"name": "fake", "provider": "openai", "model": "fake-model", "base_url": self.llm.base_url,
               "max_retries": 0}
        self.sc.apply({"llms": [llm], "agents": agents, "tools": tools or []})

    def idle(self) -> None:
        assert self.dispatcher.wait_idle(60), "in-process steps still running after 60s"
        assert not self.dispatcher.errors, self.dispatcher.errors

    def start(self, agent: str, message: str) -> RunHandle:
        run = self.sc.enqueue(agent=agent, user_message=message)
        self.idle()
        return run

    def close(self) -> None:
        self.dispatcher.close()
        self.steps_db.dispose()
        self.sc.close()


def make_local(database_url: str, llm: FakeLLM, tmp: Path, **settings: Any) -> Local:
    config = Settings(database_url=database_url, broker_url="memory://", **settings)
    steps_db = Database(database_url)
    dispatcher = InProcessDispatcher(Engine(steps_db, config))
    return Local(Smallchain(settings=config, dispatcher=dispatcher), llm, dispatcher, tmp, steps_db)
