"""A smallchain deployment for one test: a database, the private Redis, the fake LLM and real workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smallchain import Smallchain
from smallchain.settings import Settings
from tests.support.llm_server import FakeLLM
from tests.support.runtools import ledger_entries
from tests.support.services import service_env
from tests.support.workers import WorkerProcess, Workers


@dataclass
class Cluster:
    sc: Smallchain
    llm: FakeLLM
    workers: Workers
    tmp: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def ledger(self) -> Path:
        return self.tmp / "ledger.jsonl"

    @property
    def env(self) -> dict[str, str]:
        return service_env(self.sc.settings.database_url, self.sc.settings.broker_url, self.llm,
                           SMALLCHAIN_TEST_LEDGER=str(self.ledger), **self.extra_env)

    def start_worker(self, queues: str = "llm,tools,delegation", pool: str = "threads",
                     concurrency: int = 8, **env: str) -> WorkerProcess:
        return self.workers.start(queues=queues, pool=pool, concurrency=concurrency, env={**self.env, **env})

    def executions(self, tool: str | None = None) -> list[dict[str, Any]]:
        return [e for e in ledger_entries(self.ledger) if tool is None or e["tool"] == tool]

    def llm_spec(self, name: str = "fake") -> dict[str, Any]:
        # max_retries=1 keeps the SDK's own backoff short in tests that return 5xx.
        return {"name": name, "provider": "openai", "model": "fake-model", "base_url": self.llm.base_url,
                "max_retries": 1}

    def apply(self, agents: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> None:
        self.sc.apply({"llms": [self.llm_spec()], "agents": agents, "tools": tools or []})


def make_cluster(database_url: str, broker_url: str, llm: FakeLLM, workers: Workers, tmp: Path,
                 **settings: Any) -> Cluster:
    sc = Smallchain(settings=Settings(database_url=database_url, broker_url=broker_url, **settings))
    return Cluster(sc=sc, llm=llm, workers=workers, tmp=tmp)
