"""An OpenAI-compatible chat-completions server for tests, running in a thread of the test process.

Tests script each answer with a handler ``(request body) -> Reply`` so that behaviour is decided by
what the agent actually sent (system prompt, turn, tool results), not by call order, which is not
deterministic once several Celery workers talk to the same server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

__all__ = [
    "FakeLLM",
    "Handler",
    "Reply",
    "ToolCall",
    "call",
    "delay",
    "error",
    "hang_up",
    "in_order",
    "last_message",
    "system_prompt",
    "text",
    "tool_calls",
    "tool_results",
    "turn",
]

CHAT_PATH = "/v1/chat/completions"
DEFAULT_MODEL = "fake-model"


@dataclass(frozen=True)
class ToolCall:
    name: str
    # Always the raw string sent on the wire, so a test can send malformed JSON on purpose.
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with text(), tool_calls(), error(), delay() or hang_up()."""

    kind: Literal["message", "error", "hang_up"] = "message"
    content: str | None = None
    calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    prompt_tokens: int = 10
    completion_tokens: int = 5
    status: int = 200
    error_message: str = ""
    error_type: str | None = None
    error_code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


Handler = Callable[[dict[str, Any]], Reply]


def call(name: str, arguments: Mapping[str, Any] | str | None = None, id: str | None = None) -> ToolCall:
    """A tool call; ``id=None`` lets the server generate a unique ``call_<n>``."""
    if arguments is None:
        arguments = {}
    raw = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
    return ToolCall(name=name, arguments=raw, id=id)


def text(
    content: str, *, finish_reason: str = "stop", prompt_tokens: int = 10, completion_tokens: int = 5
) -> Reply:
    return Reply(
        content=content,
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


def tool_calls(
    *calls: ToolCall, content: str | None = None, prompt_tokens: int = 10, completion_tokens: int = 5
) -> Reply:
    if not calls:
        raise ValueError("tool_calls() needs at least one call()")
    return Reply(
        content=content,
        calls=tuple(calls),
        finish_reason="tool_calls",
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


_DEFAULT_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error(
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """An HTTP error with an OpenAI-shaped body. For 429/5xx pass ``headers={"retry-after": "0"}``
    if the SDK's own retries should not wait."""
    if status < 400:
        raise ValueError(f"error() needs a 4xx/5xx status, got {status}")
    return Reply(
        kind="error",
        status=status,
        error_message=message,
        error_type=type or _DEFAULT_ERROR_TYPES.get(status, "server_error" if status >= 500 else "api_error"),
        error_code=code,
        headers=dict(headers or {}),
    )


def delay(seconds: float, reply: Reply) -> Reply:
    return dataclasses.replace(reply, delay=reply.delay + seconds)


def hang_up() -> Reply:
    """Close the connection without answering: the SDK sees a connection error."""
    return Reply(kind="hang_up")


def in_order(*replies: Reply) -> Handler:
    """Serve ``replies`` one per request, in arrival order; fails the request once they run out.

    Only deterministic when one agent talks to the server at a time; otherwise decide on the body.
    """
    pending = list(replies)
    lock = threading.Lock()

    def handler(_body: dict[str, Any]) -> Reply:
        with lock:
            if not pending:
                raise AssertionError(f"in_order(): all {len(replies)} scripted replies already served")
            return pending.pop(0)

    return handler


# --- inspecting a request body --------------------------------------------------------------------


def _content_text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        # Multi-part content: only text parts carry the prompt.
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return str(content)


def system_prompt(body: Mapping[str, Any]) -> str | None:
    for message in body.get("messages") or []:
        if message.get("role") in ("system", "developer"):
            return _content_text(message.get("content"))
    return None


def last_message(body: Mapping[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") or []
    if not messages:
        raise ValueError("request has no messages")
    return dict(messages[-1])


def turn(body: Mapping[str, Any]) -> int:
    """How many assistant turns the conversation already holds (0 on the first request of a run)."""
    return sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")


def tool_results(body: Mapping[str, Any]) -> list[str]:
    """Contents of the tool messages answering the last assistant turn, in order."""
    messages = list(body.get("messages") or [])
    last_assistant = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    return [
        _content_text(m.get("content")) or ""
        for m in messages[last_assistant + 1 :]
        if m.get("role") == "tool"
    ]


def _no_script(_body: dict[str, Any]) -> Reply:
    raise AssertionError("FakeLLM received a request but no handler was set: call fake_llm.script(...)")


# --- the server ------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # stop() shuts open connections down itself; waiting here would hang on idle keep-alives.
    block_on_close = False

    def __init__(self, address: tuple[str, int], fake: FakeLLM) -> None:
        self.fake = fake
        super().__init__(address, _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so the SDK's pooled keep-alive connections behave as against a real API.
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # pytest output is noisy enough; .requests is the record.

    def do_GET(self) -> None:
        self._discard_body()
        self._send_error(404, f"no route for GET {self.path}", "not_found_error")

    def do_POST(self) -> None:
        raw = self._read_body()
        if self.path.split("?", 1)[0].rstrip("/") != CHAT_PATH:
            self._send_error(404, f"no route for POST {self.path}", "not_found_error")
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            self._send_error(400, f"request body is not JSON: {exc}", "invalid_request_error")
            return
        if not isinstance(body, dict):
            self._send_error(400, "request body must be a JSON object", "invalid_request_error")
            return
        fake = self.server.fake
        fake._record(body)
        try:
            reply = fake._handler(body)
            if not isinstance(reply, Reply):
                raise TypeError(f"FakeLLM handler returned {type(reply).__name__}, expected Reply")
        except Exception as exc:
            # A broken script is a test bug: keep it for the fixture to report, answer 500 meanwhile.
            fake._record_error(exc)
            self._send_error(500, f"FakeLLM handler raised: {exc!r}", "server_error")
            return
        if reply.delay and fake._stopping.wait(reply.delay):
            self.close_connection = True
            return
        if reply.kind == "hang_up":
            self.close_connection = True
            return
        if reply.kind == "error":
            self._send_error(
                reply.status, reply.error_message, reply.error_type, reply.error_code, reply.headers
            )
            return
        self._send_json(200, fake._completion(body, reply))

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _discard_body(self) -> None:
        self._read_body()

    def _send_error(
        self,
        status: int,
        message: str,
        type: str | None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        payload = {"error": {"message": message, "type": type, "param": None, "code": code}}
        self._send_json(status, payload, headers)

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        self.send_response(status, phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class FakeLLM:
    """``with FakeLLM() as llm: llm.script(lambda body: text("hi"))``; point clients at ``llm.base_url``."""

    def __init__(self, handler: Handler | None = None) -> None:
        self._handler: Handler = handler or _no_script
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._errors: list[BaseException] = []
        self._call_ids = itertools.count(1)
        self._completion_ids = itertools.count(1)
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle --

    def start(self) -> FakeLLM:
        """Start serving. After stop(), start() again reuses the same port, so clients can be
        pointed at the server once and see it go away and come back."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeLLM", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        # Pooled keep-alive connections would otherwise still be answered by their handler threads.
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("FakeLLM is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting and inspection --

    def script(self, handler: Handler) -> FakeLLM:
        self._handler = handler
        return self

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat-completions body received so far, in arrival order (a snapshot copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by the handler; a non-empty list means the test script is wrong."""
        with self._lock:
            return list(self._errors)

    def format_errors(self) -> str:
        with self._lock:
            errors = list(self._errors)
        return "\n".join("".join(traceback.format_exception(e)) for e in errors)

    def requests_for(self, system: str) -> list[dict[str, Any]]:
        """The requests whose system prompt is exactly ``system`` (i.e. from one agent)."""
        return [body for body in self.requests if system_prompt(body) == system]

    def counts(self, system: str) -> int:
        """How many requests had exactly this system prompt."""
        return len(self.requests_for(system))

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._errors.clear()

    def wait_for_requests(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` requests arrived; the test fails with what did arrive otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests
            if len(got) >= n:
                return got
            if time.monotonic() >= deadline:
                raise TimeoutError(f"FakeLLM: expected {n} requests within {timeout}s, got {len(got)}")
            time.sleep(0.02)

    # -- used by the request handler --

    def _record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(body)

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _next_call_id(self) -> str:
        with self._lock:
            return f"call_{next(self._call_ids)}"

    def _completion(self, body: Mapping[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.calls:
            message["tool_calls"] = [
                {
                    "id": c.id or self._next_call_id(),
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in reply.calls
            ]
        with self._lock:
            completion_id = f"chatcmpl-fake{next(self._completion_ids)}"
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or DEFAULT_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason or ("tool_calls" if reply.calls else "stop"),
                }
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }
