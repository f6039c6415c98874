"""Shared fixtures: real Redis, PostgreSQL, SQLite, an OpenAI-compatible server and Celery workers.

A service that is missing skips the test locally and fails it when CI=true.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from tests.support.llm_server import FakeLLM
from tests.support.services import (
    PostgresSchemas,
    RedisServer,
    flush_redis,
    sqlite_url_for,
    start_redis,
)
from tests.support.workers import Workers

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
_WORKERS = pytest.StashKey[Workers]()
_FAKE_LLM = pytest.StashKey[FakeLLM]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: needs the PostgreSQL server on 127.0.0.1:5432")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    if report.failed:
        # Worker logs are the only view into what happened on the other side of the broker.
        workers = item.stash.get(_WORKERS, None)
        if workers is not None:
            for title, tail in workers.report():
                report.sections.append((f"{title} [{report.when}]", tail))
        fake = item.stash.get(_FAKE_LLM, None)
        if fake is not None and fake.errors:
            report.sections.append(("FakeLLM handler errors", fake.format_errors()))
    return report


def _test_failed(item: pytest.Item) -> bool:
    reports = item.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


# --- Redis ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:<port>/0`` of a private redis-server shared by the session."""
    return redis_server.url


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """The private Redis, emptied first, so no message or lock from an earlier test survives."""
    flush_redis(redis_url)
    return redis_url


# --- databases ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_schemas() -> Iterator[PostgresSchemas]:
    schemas = PostgresSchemas.connect()
    try:
        yield schemas
    finally:
        schemas.cleanup()


@pytest.fixture(scope="session")
def pg_url(pg_schemas: PostgresSchemas) -> str:
    """One private schema shared by the whole session."""
    return pg_schemas.fresh_url()


@pytest.fixture
def fresh_pg_url(pg_schemas: PostgresSchemas) -> Callable[[], str]:
    """Call it for as many fresh, empty schemas as a test needs; all are dropped at session end."""
    return pg_schemas.fresh_url


@pytest.fixture
def pg_database_url(pg_schemas: PostgresSchemas) -> str:
    """A fresh, empty schema for this test only."""
    return pg_schemas.fresh_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return sqlite_url_for(tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind; the test runs once per backend."""
    if request.param == "sqlite":
        return sqlite_url_for(tmp_path)
    # Looked up lazily so SQLite runs do not need PostgreSQL.
    schemas: PostgresSchemas = request.getfixturevalue("pg_schemas")
    return schemas.fresh_url()


# --- LLM and workers ------------------------------------------------------------------------------


@pytest.fixture
def fake_llm(request: pytest.FixtureRequest) -> Iterator[FakeLLM]:
    llm = FakeLLM().start()
    request.node.stash[_FAKE_LLM] = llm
    try:
        yield llm
    finally:
        llm.stop()
    # A raising handler is a bug in the test's script; if the test still passed, say so here.
    if llm.errors and not _test_failed(request.node):
        pytest.fail("FakeLLM handler raised:\n" + llm.format_errors(), pytrace=False)


@pytest.fixture
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workers]:
    """``workers.start(queues="llm,tools,delegation", pool="threads", concurrency=8, env=service_env(...))``."""
    factory = Workers(tmp_path / "workers")
    request.node.stash[_WORKERS] = factory
    try:
        yield factory
    finally:
        factory.stop_all()
