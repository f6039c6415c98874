"""Real backing services for tests: a private redis-server, private PostgreSQL schemas, SQLite files.

Nothing here touches a service the developer already runs: Redis is a fresh process on a free
port, and PostgreSQL work happens in throwaway schemas of database ``test``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

import psycopg
import pytest
import redis

if TYPE_CHECKING:
    from tests.support.llm_server import FakeLLM

TESTS_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = TESTS_DIR.parent

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_DATABASE = "test"
SCHEMA_PREFIX = "sc_test_"


# --- skip locally, fail in CI ---------------------------------------------------------------------


def is_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> NoReturn:
    """A missing service skips the test on a laptop but fails it in CI, where it must exist."""
    if is_ci():
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def require(condition: object, reason: str) -> None:
    if not condition:
        unavailable(reason)


# --- Redis ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


class RedisServer:
    """A private ``redis-server`` process without persistence, in its own directory."""

    def __init__(self, directory: Path, binary: str = "redis-server") -> None:
        self.directory = directory
        self.binary = binary
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        # free_port() can race with another process grabbing the port; a few attempts cover it.
        last_error = ""
        for _ in range(5):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [
                        self.binary,
                        "--port", str(self.port),
                        "--bind", "127.0.0.1",
                        "--save", "",
                        "--appendonly", "no",
                        "--dir", str(self.directory),
                        "--daemonize", "no",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_ping(timeout):
                return self
            last_error = _tail(self.log_path)
            self.stop()
        raise RuntimeError(f"redis-server did not come up; log tail:\n{last_error}")

    def _wait_ping(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.RedisError:
                    pass
                time.sleep(0.05)
            return False
        finally:
            client.close()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_redis(directory: Path) -> RedisServer:
    """Start a private Redis, or skip (fail in CI) when the binary is not installed."""
    binary = shutil.which("redis-server")
    require(binary, "redis-server is not installed (apt-get install redis-server)")
    assert binary is not None
    return RedisServer(directory, binary).start()


def flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()


# --- PostgreSQL -----------------------------------------------------------------------------------


class PostgresSchemas:
    """Hands out fresh schemas in database ``test`` and drops them all at cleanup().

    Each URL pins ``search_path`` to its schema, so code under test creates its tables there and
    never sees another test's rows; ``application_name`` names the schema so cleanup can end
    connections a test leaked (an idle transaction would otherwise block DROP SCHEMA).
    """

    def __init__(self, user: str) -> None:
        self.user = user
        self.schemas: list[str] = []
        self._lock = threading.Lock()

    @classmethod
    def connect(cls) -> PostgresSchemas:
        """Find a user that works (the OS user, then ``postgres``); skip or fail when none does."""
        errors: list[str] = []
        for user in (None, "postgres"):
            try:
                with psycopg.connect(
                    host=PG_HOST, port=PG_PORT, dbname=PG_DATABASE, user=user, connect_timeout=3
                ) as conn:
                    row = conn.execute("select current_user").fetchone()
                    assert row is not None
                    return cls(str(row[0]))
            except psycopg.Error as exc:
                errors.append(f"user={user or '<default>'}: {str(exc).strip()}")
        unavailable(
            f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} database {PG_DATABASE!r}: "
            + "; ".join(errors)
        )

    def _admin(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            host=PG_HOST, port=PG_PORT, dbname=PG_DATABASE, user=self.user, autocommit=True,
            connect_timeout=5,
        )

    def url_for(self, schema: str) -> str:
        return (
            f"postgresql+psycopg://{quote(self.user, safe='')}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}"
            f"?options=-csearch_path%3D{schema}&application_name={schema}"
        )

    def fresh_schema(self) -> str:
        schema = f"{SCHEMA_PREFIX}{secrets.token_hex(6)}"
        with self._admin() as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        with self._lock:
            self.schemas.append(schema)
        return schema

    def fresh_url(self) -> str:
        return self.url_for(self.fresh_schema())

    def drop(self, schema: str) -> None:
        with self._admin() as conn:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where application_name = %s and pid <> pg_backend_pid()",
                (schema,),
            )
            conn.execute("set lock_timeout = '10s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def cleanup(self) -> None:
        with self._lock:
            schemas, self.schemas = self.schemas, []
        failures: list[str] = []
        for schema in schemas:
            try:
                self.drop(schema)
            except Exception as exc:  # one stuck schema must not keep the others around
                failures.append(f"{schema}: {exc}")
        if failures:
            raise RuntimeError("could not drop test schemas: " + "; ".join(failures))


# --- SQLite ---------------------------------------------------------------------------------------


def sqlite_url_for(directory: Path, name: str = "smallchain.db") -> str:
    return f"sqlite:///{directory.resolve() / name}"


# --- environment for subprocesses -----------------------------------------------------------------


def service_env(
    database_url: str, broker_url: str, fake_llm: FakeLLM | None = None, **extra: str
) -> dict[str, str]:
    """Environment overrides that point a smallchain process (worker, CLI, server) at the test services."""
    pythonpath = [str(REPO_ROOT), str(TESTS_DIR)]
    if os.environ.get("PYTHONPATH"):
        pythonpath.append(os.environ["PYTHONPATH"])
    env = {
        "SMALLCHAIN_DATABASE_URL": database_url,
        "SMALLCHAIN_BROKER_URL": broker_url,
        "OPENAI_API_KEY": "test-key",
        "PYTHONPATH": os.pathsep.join(pythonpath),
        "PYTHONUNBUFFERED": "1",
    }
    if fake_llm is not None:
        env["OPENAI_BASE_URL"] = fake_llm.base_url
    env.update(extra)
    return env


def subprocess_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without the developer's own SMALLCHAIN_* / OPENAI_* settings, plus ``overrides``.

    Inherited settings would silently point a subprocess at a real database, broker or API.
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SMALLCHAIN_", "OPENAI_", "CELERY_"))
    }
    env.update(overrides or {})
    return env
