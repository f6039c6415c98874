"""The test services themselves: private Redis, private PostgreSQL schemas, SQLite, Celery workers."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import redis
import sqlalchemy as sa
from celery import Celery

from tests.support.llm_server import FakeLLM
from tests.support.services import REPO_ROOT, TESTS_DIR, is_ci, require, service_env, subprocess_env
from tests.support.workers import WorkerError, Workers


def _probe_app() -> Celery:
    # Stand-in for smallchain.celery.app so the worker machinery is tested for real already; the
    # worker imports this module with SMALLCHAIN_BROKER_URL pointing at the private Redis.
    app = Celery("sc_probe", broker=os.environ.get("SMALLCHAIN_BROKER_URL", "memory://"))

    @app.task(name="probe.touch")
    def touch(key: str) -> None:
        client = redis.Redis.from_url(app.conf.broker_url)
        client.set(key, f"{os.getpid()}:{os.environ.get('OPENAI_BASE_URL')}")

    @app.task(name="probe.sleep")
    def sleep(key: str, seconds: float) -> None:
        redis.Redis.from_url(app.conf.broker_url).set(key, "started")
        time.sleep(seconds)

    return app


probe_app = _probe_app()
PROBE_APP = "tests.test_support:probe_app"


def _wait_for_key(url: str, key: str, timeout: float = 30.0) -> bytes:
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = client.get(key)
        if isinstance(value, bytes):
            return value
        time.sleep(0.05)
    raise AssertionError(f"redis key {key!r} not set within {timeout}s")


# --- Redis ----------------------------------------------------------------------------------------


def test_private_redis_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.ping()
    client.set("sc:test", "value")
    assert client.get("sc:test") == b"value"
    # Never the developer's Redis on the default port.
    assert client.connection_pool.connection_kwargs["port"] != 6379
    assert client.config_get("save")["save"] == ""


def test_broker_url_starts_empty(broker_url: str) -> None:
    client = redis.Redis.from_url(broker_url)
    assert client.dbsize() == 0
    client.set("left-behind", 1)


def test_broker_url_starts_empty_again(broker_url: str) -> None:
    assert redis.Redis.from_url(broker_url).dbsize() == 0


# --- PostgreSQL -----------------------------------------------------------------------------------


def test_pg_schema_is_private(pg_database_url: str) -> None:
    engine = sa.create_engine(pg_database_url)
    try:
        with engine.begin() as conn:
            schema = conn.execute(sa.text("select current_schema()")).scalar_one()
            assert schema.startswith("sc_test_")
            conn.execute(sa.text("create table probe (id integer primary key)"))
            conn.execute(sa.text("insert into probe values (1)"))
            where = conn.execute(
                sa.text("select table_schema from information_schema.tables where table_name = 'probe'")
            ).scalars().all()
            assert where == [schema]
            with pytest.raises(sa.exc.ProgrammingError), conn.begin_nested():
                conn.execute(sa.text("select * from public.probe"))
    finally:
        engine.dispose()


def test_fresh_pg_urls_do_not_share_rows(fresh_pg_url: Callable[[], str]) -> None:
    first, second = fresh_pg_url(), fresh_pg_url()
    assert first != second
    for url, rows in ((first, 3), (second, 0)):
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("create table t (id integer)"))
                for i in range(rows):
                    conn.execute(sa.text("insert into t values (:i)"), {"i": i})
            with engine.connect() as conn:
                assert conn.execute(sa.text("select count(*) from t")).scalar_one() == rows
        finally:
            engine.dispose()


def test_pg_url_is_session_wide(pg_url: str) -> None:
    assert "search_path%3Dsc_test_" in pg_url
    dsn = sa.make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select current_schema()").fetchone()
        assert row is not None and str(row[0]).startswith("sc_test_")


# --- SQLite and the parametrized database ---------------------------------------------------------


def test_sqlite_url_is_a_file_in_tmp(sqlite_url: str, tmp_path: Path) -> None:
    path = Path(sa.make_url(sqlite_url).database or "")
    assert path == tmp_path / "smallchain.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table t (x)")
    assert path.exists()


def test_database_url_is_fresh(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            conn.execute(sa.text("create table t (x integer)"))
        assert sa.inspect(engine).get_table_names() == ["t"]
    finally:
        engine.dispose()


# --- environment and skip/fail policy -------------------------------------------------------------


def test_service_env(fake_llm: FakeLLM) -> None:
    env = service_env("sqlite:///x.db", "redis://127.0.0.1:1/0", fake_llm)
    assert env["SMALLCHAIN_DATABASE_URL"] == "sqlite:///x.db"
    assert env["SMALLCHAIN_BROKER_URL"] == "redis://127.0.0.1:1/0"
    assert env["OPENAI_BASE_URL"] == fake_llm.base_url
    assert env["OPENAI_API_KEY"] == "test-key"
    assert env["PYTHONPATH"].split(os.pathsep)[:2] == [str(REPO_ROOT), str(TESTS_DIR)]


def test_subprocess_env_drops_developer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLCHAIN_DATABASE_URL", "postgresql://prod/db")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    env = subprocess_env({"SMALLCHAIN_BROKER_URL": "redis://x"})
    assert "SMALLCHAIN_DATABASE_URL" not in env
    assert "OPENAI_API_KEY" not in env
    assert env["SMALLCHAIN_BROKER_URL"] == "redis://x"


def test_require_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "false")
    assert not is_ci()
    require(True, "never raised")
    with pytest.raises(pytest.skip.Exception, match="no thing"):
        require(False, "no thing")


def test_require_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert is_ci()
    with pytest.raises(pytest.fail.Exception, match="no thing"):
        require(False, "no thing")


# --- Celery workers -------------------------------------------------------------------------------


def test_workers_refuse_to_run_without_test_services(workers: Workers) -> None:
    with pytest.raises(WorkerError, match="SMALLCHAIN_BROKER_URL"):
        workers.start(env={"SMALLCHAIN_DATABASE_URL": "sqlite://"})


def test_worker_runs_tasks_from_the_private_broker(
    workers: Workers, broker_url: str, sqlite_url: str, fake_llm: FakeLLM
) -> None:
    worker = workers.start(
        queues="tools", concurrency=2, env=service_env(sqlite_url, broker_url, fake_llm), app=PROBE_APP
    )
    assert worker.is_alive()
    assert worker.is_ready()

    key = f"probe:{uuid.uuid4().hex}"
    with Celery(broker=broker_url) as sender:
        sender.send_task("probe.touch", args=[key], queue="tools")
    pid, base_url = _wait_for_key(broker_url, key).decode().split(":", 1)

    assert int(pid) == worker.pid  # threads pool: the task ran inside the worker process
    assert base_url == fake_llm.base_url
    assert worker.stop() == 0
    assert not worker.is_alive()


def test_kill_takes_down_prefork_children(workers: Workers, broker_url: str, sqlite_url: str) -> None:
    worker = workers.start(
        queues="tools", pool="prefork", concurrency=2, env=service_env(sqlite_url, broker_url), app=PROBE_APP
    )
    key = f"probe:{uuid.uuid4().hex}"
    with Celery(broker=broker_url) as sender:
        sender.send_task("probe.sleep", args=[key, 60], queue="tools")
    assert _wait_for_key(broker_url, key) == b"started"

    assert worker.kill() == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(worker.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "prefork children survived kill()"
        time.sleep(0.05)


def test_worker_that_cannot_start_reports_its_log(workers: Workers, broker_url: str, sqlite_url: str) -> None:
    with pytest.raises(WorkerError, match="No module named") as excinfo:
        workers.start(env=service_env(sqlite_url, broker_url), app="tests.no_such_module:app")
    assert "before it was ready" in str(excinfo.value)
