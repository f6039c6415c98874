"""The `smallchain` command, run as users run it: the installed console script in a subprocess.

Each test gets its own SQLite file. The broker URL points at a port where nothing listens, so a
command that should not need the broker proves it, and one that does fails fast and visibly;
only the worker test uses a real (private) Redis.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.seed import SEED_AS_PRINTED
from tests.support.services import REPO_ROOT, sqlite_url_for, subprocess_env

EXAMPLES = REPO_ROOT / "examples"
CALCULATOR = EXAMPLES / "calculator.yaml"
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"
PRETTY_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[(INFO|WARN|ERROR)\] .+")
COLUMNS = re.compile(r"\s{2,}")


def smallchain_executable() -> str:
    beside = Path(sys.executable).parent / "smallchain"
    if beside.exists():
        return str(beside)
    found = shutil.which("smallchain")
    if found is None:
        pytest.fail("the `smallchain` console script is not installed (pip install -e .)")
    return found


@dataclass
class CLI:
    """Runs `smallchain ...` against one database, in a scratch directory."""

    cwd: Path
    database_url: str
    broker_url: str = UNREACHABLE_BROKER

    def env(self) -> dict[str, str]:
        return subprocess_env({
            "SMALLCHAIN_DATABASE_URL": self.database_url,
            "SMALLCHAIN_BROKER_URL": self.broker_url,
            "PYTHONUNBUFFERED": "1",
        })

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [smallchain_executable(), *args], cwd=self.cwd, env=self.env(), capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = self(*args, timeout=timeout)
        assert result.returncode == 0, f"smallchain {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result

    @property
    def db_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))


Ran = tuple[CLI, subprocess.CompletedProcess[str]]


def make_cli(directory: Path) -> CLI:
    directory.mkdir(parents=True, exist_ok=True)
    return CLI(cwd=directory, database_url=sqlite_url_for(directory))


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode in (1, 2), result
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], result.stderr


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return make_cli(tmp_path / "work")


@pytest.fixture(scope="module")
def calculator(tmp_path_factory: pytest.TempPathFactory) -> tuple[CLI, subprocess.CompletedProcess[str]]:
    """A database in which `smallchain run -f examples/calculator.yaml` has run once."""
    cli = make_cli(tmp_path_factory.mktemp("calculator"))
    return cli, cli("run", "-f", str(CALCULATOR))


def root_id(cli: CLI, name: str = "my first run") -> str:
    view = json.loads(cli.ok("get", "run", name, "-o", "json").stdout)
    return str(view["id"])


# --- run -f: the one-command path --------------------------------------------------------------------


def test_run_processes_the_calculator_example_in_process(calculator: Ran) -> None:
    _, result = calculator
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "run/my first run started" in out
    assert "llm/scripted-gpt created" in out and "agent/calculator_operator created" in out
    # Live progress in the seed's format, then the output.
    events = [line for line in out.splitlines() if line.startswith("[")]
    assert events and all(PRETTY_LINE.match(line) for line in events), events
    assert any("Agent 'calculator_operator' is using tool: add" in line for line in events)
    assert any("Run 'my first run' completed successfully" in line for line in events)
    assert out.rstrip().endswith("==> my first run: Succeeded\nThe result is 15")


def test_run_again_prints_the_earlier_result_and_fresh_runs_it_again(tmp_path: Path) -> None:
    cli = make_cli(tmp_path / "again")
    first = cli.ok("run", "-f", str(CALCULATOR))
    assert "The result is 15" in first.stdout
    again = cli.ok("run", "-q", "-f", str(CALCULATOR))
    assert "started" not in again.stdout
    assert "run/my first run unchanged (already exists: Succeeded" in again.stdout
    assert again.stdout.rstrip().endswith("The result is 15")
    old_id = root_id(cli)

    fresh = cli.ok("run", "--fresh", "-q", "-f", str(CALCULATOR))
    assert "run/my first run deleted (--fresh)" in fresh.stdout
    assert "run/my first run started" in fresh.stdout
    assert fresh.stdout.rstrip().endswith("The result is 15")
    assert root_id(cli) != old_id
    assert len(json.loads(cli.ok("get", "runs", "-o", "json").stdout)) == 4  # the old tree is gone


def test_run_exits_non_zero_when_a_run_fails(cli: CLI) -> None:
    manifest = cli.cwd / "mute.yaml"
    manifest.write_text(yaml.safe_dump({
        "llms": [{"name": "mute", "provider": "scripted", "replies": [{"when": "^never$", "content": "no"}]}],
        "agents": [{"name": "helper", "llm": "mute"}],
        "tasks": [{"name": "ask", "agent": "helper", "user_message": "hello"}],
        "runs": [{"name": "doomed", "task": "ask"}],
    }))
    result = cli("run", "-f", "mute.yaml")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "==> doomed: Failed" in result.stdout
    assert "has no reply for agent 'helper'" in result.stdout
    assert any(re.match(r"^\[.*\] \[ERROR\] Run 'doomed' failed: ", line) for line in result.stdout.splitlines())


def test_the_blog_team_example_runs(cli: CLI) -> None:
    result = cli.ok("run", "-q", "-f", str(EXAMPLES / "blog-team.yaml"))
    assert "==> blog post: Succeeded" in result.stdout
    assert "# Durable execution for AI agents" in result.stdout
    runs = json.loads(cli.ok("get", "runs", "-o", "json").stdout)
    assert sorted(r["agent"] for r in runs) == ["manager", "planner", "researcher", "writer"]
    search = json.loads(cli.ok("get", "toolcalls", "-o", "json").stdout)
    assert [c["result"] for c in search if c["name"] == "search"][0].startswith("- durable execution")


# --- apply -----------------------------------------------------------------------------------------------


def test_apply_twice_changes_nothing_and_starts_no_run(calculator: Ran,
                                                       tmp_path: Path) -> None:
    cli, _ = calculator
    # The run exists already: nothing is enqueued, so the unreachable broker is never asked.
    second = cli.ok("apply", "-f", str(CALCULATOR))
    lines = second.stdout.strip().splitlines()
    assert lines[:-1] and all(line.endswith(" unchanged") for line in lines[:-1]), lines
    assert lines[-1].startswith("run/my first run unchanged (already exists: Succeeded")
    assert "started" not in second.stdout and "created" not in second.stdout

    # A file without runs, on a fresh database: created, then unchanged.
    fresh = make_cli(tmp_path / "fresh")
    data = yaml.safe_load(CALCULATOR.read_text())
    data.pop("runs")
    (fresh.cwd / "no-runs.yaml").write_text(yaml.safe_dump(data))
    first = fresh.ok("apply", "-f", "no-runs.yaml").stdout.strip().splitlines()
    assert first and all(line.endswith(" created") for line in first)
    assert fresh.ok("apply", "-f", "no-runs.yaml").stdout.strip().splitlines() == [
        line.replace(" created", " unchanged") for line in first
    ]
    data["agents"][0]["system_prompt"] = "be brief"
    (fresh.cwd / "no-runs.yaml").write_text(yaml.safe_dump(data))
    assert "agent/assistant configured" in fresh.ok("apply", "-f", "no-runs.yaml").stdout


def test_apply_with_an_unreachable_broker_fails_in_one_line(cli: CLI) -> None:
    result = cli("apply", "-f", str(CALCULATOR))
    assert_one_line_error(result, "cannot reach the broker at redis://127.0.0.1:1/0")
    assert result.returncode == 1
    # The run was recorded; the sweeper (or `run -f`) can still take it from there.
    assert json.loads(cli.ok("get", "run", "my first run", "-o", "json").stdout)["status"] == "Pending"
    resumed = cli.ok("run", "-q", "-f", str(CALCULATOR))
    assert resumed.stdout.rstrip().endswith("The result is 15")


# --- get -------------------------------------------------------------------------------------------------


def test_get_runs_table_json_and_yaml(calculator: Ran) -> None:
    cli, _ = calculator
    lines = cli.ok("get", "runs").stdout.rstrip("\n").splitlines()
    assert COLUMNS.split(lines[0]) == ["RUN NAME", "STATUS", "TASK", "AGENT", "ID", "DEPTH"]
    rows = [COLUMNS.split(line) for line in lines[1:]]
    root = rows[0]
    assert root[:4] == ["my first run", "Succeeded", "do_some_math", "assistant"] and root[5] == "0"
    assert re.fullmatch(r"[0-9a-f]{32}", root[4])
    assert [r[:4] + r[5:] for r in rows[1:]] == [["-", "Succeeded", "-", "calculator_operator", "1"]] * 3

    runs = json.loads(cli.ok("get", "runs", "-o", "json").stdout)
    assert len(runs) == 4
    fields = {"id", "name", "task", "agent", "status", "output", "error", "depth", "parent_id", "created_at"}
    assert all(fields <= set(r) for r in runs)
    assert runs[0]["id"] == root[4] and runs[0]["output"] == "The result is 15" and runs[0]["parent_id"] is None
    assert sorted(r["output"] for r in runs[1:]) == ["15", "7", "8"]
    assert all(r["parent_id"] == root[4] and r["depth"] == 1 for r in runs[1:])
    assert yaml.safe_load(cli.ok("get", "runs", "-o", "yaml").stdout) == runs

    assert [r["name"] for r in json.loads(cli.ok("get", "runs", "--roots", "-o", "json").stdout)] == ["my first run"]
    one = json.loads(cli.ok("get", "run", root[4][:8], "-o", "json").stdout)
    assert one == runs[0]
    table = cli.ok("get", "run", "my first run").stdout.splitlines()
    assert len(table) == 2 and table[1].startswith("my first run")


def test_get_resources(calculator: Ran) -> None:
    cli, _ = calculator
    agents = json.loads(cli.ok("get", "agents", "-o", "json").stdout)
    assert [a["name"] for a in agents] == ["assistant", "calculator_operator"]
    assert agents[0]["tools"] == [{"agent": "calculator_operator"}]
    llms = cli.ok("get", "llms").stdout.splitlines()
    assert COLUMNS.split(llms[0]) == ["NAME", "PROVIDER", "MODEL", "UPDATED"]
    assert COLUMNS.split(llms[1])[:3] == ["scripted-gpt", "scripted", "-"]
    tools = {COLUMNS.split(line)[0]: COLUMNS.split(line)[1] for line in cli.ok("get", "tools").stdout.splitlines()[1:]}
    assert tools == {"add": "builtin", "subtract": "command"}
    tasks = yaml.safe_load(cli.ok("get", "tasks", "-o", "yaml").stdout)
    assert tasks == [{"name": "do_some_math", "agent": "assistant",
                      "user_message": "add (3 + 4) and (5 + 3) and add the results"}]
    assert_one_line_error(cli("get", "agents", "nobody"), "no agent named 'nobody'")


def test_get_toolcalls(calculator: Ran) -> None:
    cli, _ = calculator
    calls = json.loads(cli.ok("get", "toolcalls", "-o", "json").stdout)
    assert len(calls) == 6
    fields = {"id", "run_id", "run", "name", "arguments", "status", "result", "error",
              "created_at", "started_at", "finished_at", "duration_ms"}
    assert all(fields <= set(c) for c in calls)
    adds = sorted((c for c in calls if c["name"] == "add"), key=lambda c: int(c["result"]))
    assert [(c["arguments"], c["result"], c["status"]) for c in adds] == [
        ({"a": 3, "b": 4}, "7", "succeeded"),
        ({"a": 5, "b": 3}, "8", "succeeded"),
        ({"a": 7, "b": 8}, "15", "succeeded"),
    ]
    delegations = [c for c in calls if c["name"] == "calculator_operator"]
    assert [c["arguments"]["message"] for c in delegations] == ["add 3 and 4", "add 5 and 3", "add 7 and 8"]
    assert all(c["run"] == "my first run" and c["child_run_id"] for c in delegations)

    # --run covers the run's child runs; a child alone has its own call only.
    assert len(json.loads(cli.ok("get", "toolcalls", "--run", "my first run", "-o", "json").stdout)) == 6
    child = delegations[0]["child_run_id"]
    only = json.loads(cli.ok("get", "toolcalls", "--run", child, "-o", "json").stdout)
    assert [(c["name"], c["result"]) for c in only] == [("add", "7")]
    table = cli.ok("get", "toolcalls").stdout.splitlines()
    assert COLUMNS.split(table[0]) == ["ID", "RUN", "AGENT", "NAME", "STATUS", "ARGUMENTS", "RESULT", "DURATION"]
    assert len(table) == 7
    assert cli.ok("get", "toolcalls", "--waiting").stdout.strip() == "No tool calls."


def test_get_events_pretty_json_and_scope(calculator: Ran) -> None:
    cli, _ = calculator
    pretty = cli.ok("get", "events", "--pretty").stdout.splitlines()
    assert pretty and all(PRETTY_LINE.match(line) for line in pretty), pretty
    assert "[INFO] Agent 'assistant' is using tool: calculator_operator" in pretty[2]
    assert pretty[-2].endswith("[INFO] Output: The result is 15")
    assert pretty[-1].endswith("[INFO] Run 'my first run' completed successfully")

    events = [json.loads(line) for line in cli.ok("get", "events").stdout.splitlines()]
    assert len(events) == len(pretty)
    assert {"id", "ts", "level", "kind", "run_id", "message"} <= set(events[0])
    # --pretty shows the same instants, in UTC.
    for event, line in zip(events, pretty, strict=True):
        assert event["ts"].endswith("Z")
        assert line.startswith(f"[{event['ts'][:19].replace('T', ' ')}] [{event['level']}] ")

    root = root_id(cli)
    scoped = [json.loads(line) for line in cli.ok("get", "events", "--run", "my first run").stdout.splitlines()]
    assert scoped == events  # the run and its children are everything here
    child = next(e["run_id"] for e in events if e["run_id"] != root)
    own = [json.loads(line) for line in cli.ok("get", "events", "--run", child).stdout.splitlines()]
    assert own and {e["run_id"] for e in own} == {child}

    # -f stops by itself once every run in scope has finished (here: at once).
    started = time.monotonic()
    followed = cli.ok("get", "events", "--run", "my first run", "--pretty", "-f", timeout=60)
    assert followed.stdout.splitlines() == pretty
    assert time.monotonic() - started < 30


# --- describe ------------------------------------------------------------------------------------------


def test_describe_run_shows_window_calls_children_tokens(calculator: Ran) -> None:
    cli, _ = calculator
    text = cli.ok("describe", "run", "my first run").stdout
    for expected in [
        "Status:       Succeeded",
        "Output:       The result is 15",
        "Context window (8 messages):",
        "[0] system\n      your goal is to assist the human with their tasks",
        "[1] user\n      add (3 + 4) and (5 + 3) and add the results",
        'calculator_operator({"message": "add 3 and 4"})',
        "[7] assistant\n      The result is 15",
        "Tool calls (3):",
        "Child runs:",
        "calculator_operator  Succeeded: 7",
        "calculator_operator  Succeeded: 8",
        "calculator_operator  Succeeded: 15",
        "Tokens:",
        "LLM calls (3):",
    ]:
        assert expected in text, f"{expected!r} not in:\n{text}"

    data = json.loads(cli.ok("describe", "run", "my first run", "-o", "json").stdout)
    assert len(data["messages"]) == 8 and data["messages"][0] == {
        "role": "system", "content": "your goal is to assist the human with their tasks"}
    # The two first children start concurrently: their order is not fixed.
    assert sorted(int(c["output"]) for c in data["children"]) == [7, 8, 15]
    assert data["llm_calls"]["count"] == 3 and data["llm_calls"]["tree_count"] == 9
    tokens = data["tokens"]
    assert tokens["tree"]["runs"] == 4
    assert tokens["tree"]["prompt"] > tokens["run"]["prompt"] > 0
    assert [c["status"] for c in data["tool_calls"]] == ["succeeded"] * 3


# --- cancel, delete -------------------------------------------------------------------------------------


def test_cancel_and_delete(cli: CLI) -> None:
    cli("apply", "-f", str(CALCULATOR))  # the broker is unreachable: the run stays Pending
    assert_one_line_error(cli("delete", "run", "my first run"), "is Pending", "--force")
    assert cli.ok("cancel", "run", "my first run").stdout.strip() == "run/my first run cancelled"
    view = json.loads(cli.ok("get", "run", "my first run", "-o", "json").stdout)
    assert view["status"] == "Cancelled" and view["error"] == "cancelled by the user"
    assert "already Cancelled" in cli.ok("cancel", "run", "my first run").stdout
    assert cli.ok("delete", "run", "my first run").stdout.strip() == "run/my first run deleted"
    assert_one_line_error(cli("get", "run", "my first run"), "no run with name or id 'my first run'")


def test_delete_removes_the_whole_tree(cli: CLI) -> None:
    cli.ok("run", "-q", "-f", str(CALCULATOR))
    child = json.loads(cli.ok("get", "runs", "-o", "json").stdout)[1]["id"]
    assert_one_line_error(cli("delete", "run", child), "is a child of run", "delete the top-level run")
    assert cli.ok("delete", "run", "my first run").stdout.strip() == "run/my first run deleted and 3 child runs"
    with sqlite3.connect(cli.db_path) as db:
        for table in ("runs", "messages", "tool_calls", "llm_calls", "events"):
            assert db.execute(f"select count(*) from {table}").fetchone() == (0,), table
        assert db.execute("select count(*) from resources").fetchone()[0] == 6  # resources stay


def test_delete_force_cancels_an_active_run(cli: CLI) -> None:
    cli("apply", "-f", str(CALCULATOR))
    assert cli.ok("delete", "run", "my first run", "--force").stdout.strip() == "run/my first run deleted"
    assert cli.ok("get", "runs").stdout.strip() == "No runs."


# --- mistakes -------------------------------------------------------------------------------------------



@pytest.mark.parametrize("command", ["apply", "run"])
def test_missing_file_is_one_line_and_exit_2(cli: CLI, command: str) -> None:
    result = cli(command, "-f", "nope.yaml")
    assert_one_line_error(result, "nope.yaml")
    assert result.returncode == 2


@pytest.mark.parametrize("command", ["apply", "run"])
def test_the_seed_example_with_its_missing_quote_points_at_the_line(cli: CLI, command: str) -> None:
    (cli.cwd / "smallchain.yaml").write_text(SEED_AS_PRINTED)
    result = cli(command, "-f", "smallchain.yaml")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("smallchain.yaml:2: "), result.stderr
    assert "quote" in lines[0]
    assert cli.ok("get", "llms").stdout.strip() == "No llms."  # nothing was applied


def test_invalid_fields_are_listed_one_per_line(cli: CLI) -> None:
    (cli.cwd / "bad.yaml").write_text(
        "agents:\n  - name: helper\n    llm: nowhere\n    colour: blue\ntasks:\n  - name: t\n    agent: helper\n"
    )
    result = cli("apply", "-f", "bad.yaml")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and all(re.match(r"^bad\.yaml:\d+: ", line) for line in lines), lines
    assert any("colour" in line for line in lines)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [
    ["get", "run", "ghost"], ["describe", "run", "ghost"], ["cancel", "run", "ghost"], ["delete", "run", "ghost"],
    ["get", "events", "--run", "ghost"], ["get", "toolcalls", "--run", "ghost"],
])
def test_unknown_run_is_one_line_and_exit_1(cli: CLI, args: list[str]) -> None:
    result = cli(*args)
    assert_one_line_error(result, "no run with name or id 'ghost'")
    assert result.returncode == 1


def test_unreachable_database_is_one_line(cli: CLI) -> None:
    result = cli("--database-url", "postgresql://nobody:secret@127.0.0.1:1/none", "get", "runs")
    assert_one_line_error(result, "cannot open the database postgresql://nobody:***@127.0.0.1:1/none")


def test_global_options_override_the_environment(cli: CLI, tmp_path: Path) -> None:
    other = sqlite_url_for(tmp_path, "other.db")
    cli.ok("--database-url", other, "run", "-q", "-f", str(CALCULATOR))
    assert (tmp_path / "other.db").exists()
    assert cli.ok("get", "runs").stdout.strip() == "No runs."  # SMALLCHAIN_DATABASE_URL's database
    assert "my first run" in cli.ok("--database-url", other, "get", "runs").stdout


@pytest.mark.parametrize("args", [
    [], ["get"], ["get", "events"], ["get", "runs"], ["describe", "run"], ["run"], ["apply"], ["worker"],
    ["cancel", "run"], ["delete", "run"], ["sweep"],
])
def test_help_everywhere(cli: CLI, args: list[str]) -> None:
    result = cli.ok(*args, "--help")
    assert "Usage" in result.stdout


def test_version(cli: CLI) -> None:
    assert cli.ok("--version").stdout.startswith("smallchain ")


# --- with a broker: apply enqueues, `smallchain worker` processes, `get events -f` follows -------------


@pytest.fixture
def worker_process(cli: CLI, broker_url: str) -> Iterator[subprocess.Popen[bytes]]:
    cli.broker_url = broker_url
    log_path = cli.cwd / "worker.log"
    name = f"cli-test-{os.getpid()}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [smallchain_executable(), "worker", "-c", "4", "-n", f"{name}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=cli.cwd, env=cli.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not re.search(rf"{name}@\S+ ready\.", log_path.read_text(errors="replace")):
            assert process.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "worker not ready:\n" + log_path.read_text(errors="replace")
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def test_apply_enqueues_for_a_worker_and_get_events_follows(cli: CLI, worker_process: subprocess.Popen[bytes]) -> None:
    applied = cli.ok("apply", "-f", str(CALCULATOR))
    assert "run/my first run started" in applied.stdout
    followed = cli.ok("get", "events", "--pretty", "-f", "--run", "my first run", timeout=120)
    lines = followed.stdout.splitlines()
    assert all(PRETTY_LINE.match(line) for line in lines), lines
    assert lines[-1].endswith("Run 'my first run' completed successfully")
    view = json.loads(cli.ok("get", "run", "my first run", "-o", "json").stdout)
    assert (view["status"], view["output"]) == ("Succeeded", "The result is 15")
    assert "task events: ON" in (cli.cwd / "worker.log").read_text(errors="replace")
