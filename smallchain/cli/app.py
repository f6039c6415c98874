"""The ``smallchain`` command: apply manifests, run them, inspect runs, events and tool calls, start workers.

Exit codes: 0 success; 1 a failed run, an unknown run, an unreachable database or broker;
2 bad input (a file that is missing or invalid, a usage error). Errors are one line each on
stderr, never a traceback (set SMALLCHAIN_DEBUG=1 to see one for an unexpected error).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smallchain import status as st
from smallchain.cli import queries
from smallchain.cli.describe import describe_data, render_describe
from smallchain.cli.output import (
    Format,
    dump,
    echo,
    fail,
    fail_lines,
    flush,
    human_duration,
    one_line,
    pretty_event,
    pretty_time,
    table,
)

if TYPE_CHECKING:  # the engine is imported by the commands that need it, so --help stays fast
    from smallchain.api import Smallchain
    from smallchain.inprocess import InProcessDispatcher
    from smallchain.resources import ApplyResult
    from smallchain.settings import Settings
    from smallchain.spec import Manifest

CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="smallchain",
    help="Durable, distributed LLM agents on Celery: apply a smallchain.yaml, run it, watch it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)
get_app = typer.Typer(help="List resources, runs, tool calls and events.", no_args_is_help=True,
                      context_settings=CONTEXT)
describe_app = typer.Typer(help="Show everything about one run.", no_args_is_help=True, context_settings=CONTEXT)
cancel_app = typer.Typer(help="Cancel a run.", no_args_is_help=True, context_settings=CONTEXT)
delete_app = typer.Typer(help="Delete a run.", no_args_is_help=True, context_settings=CONTEXT)
app.add_typer(get_app, name="get")
app.add_typer(describe_app, name="describe")
app.add_typer(cancel_app, name="cancel")
app.add_typer(delete_app, name="delete")


# --- global state -------------------------------------------------------------------------------------


def _masked(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


@dataclass
class State:
    """What the commands of one invocation share: a Smallchain, made on first use.

    The global options are exported to the environment (SMALLCHAIN_DATABASE_URL, ...) by the root
    callback, so ``Smallchain()`` anywhere (smallchain.cli.waits too) sees them.
    """

    _sc: Smallchain | None = None

    def smallchain(self) -> Smallchain:
        if self._sc is None:
            self._sc = open_smallchain()
        return self._sc


def open_smallchain(embedded_threads: int | None = None, settings: Settings | None = None) -> Smallchain:
    """A Smallchain on the configured database (migrated), or a one-line error.

    With ``embedded_threads``, steps run on that many threads of this process instead of Celery.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from smallchain.api import Smallchain
    from smallchain.settings import Settings

    settings = settings or Settings()
    url = settings.database_url
    try:
        if embedded_threads is not None:
            return Smallchain.embedded(settings=settings, threads=embedded_threads)
        return Smallchain(settings=settings)
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot open the database {_masked(url)}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].rstrip(".") or type(exc).__name__


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def _version(value: bool) -> None:
    if value:
        from smallchain import __version__

        echo(f"smallchain {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", envvar="SMALLCHAIN_DATABASE_URL", show_envvar=True,
        help="SQLAlchemy URL of the store (default sqlite:///smallchain.db in the current directory).",
    )] = None,
    broker_url: Annotated[str | None, typer.Option(
        "--broker-url", envvar="SMALLCHAIN_BROKER_URL", show_envvar=True,
        help="Celery broker URL (default redis://127.0.0.1:6379/0).",
    )] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    # Exported, so everything reading Settings() (the Celery app included) sees the same values.
    if database_url:
        os.environ["SMALLCHAIN_DATABASE_URL"] = database_url
    if broker_url:
        os.environ["SMALLCHAIN_BROKER_URL"] = broker_url
    ctx.obj = State()


# --- manifests ----------------------------------------------------------------------------------------


FileOption = Annotated[Path, typer.Option("-f", "--file", help="The manifest (smallchain.yaml).",
                                          show_default=False)]
OutputOption = Annotated[Format, typer.Option("-o", "--output", help="Output format.")]


def _manifest_path(file: Path) -> Path:
    if str(file) != "-" and not file.exists():
        fail(f"{file}: no such file", 2)
    if file.is_dir():
        fail(f"{file}: is a directory, not a manifest file", 2)
    return file


def load_file(sc: Smallchain, file: Path) -> Manifest:
    """The validated manifest, references checked against what is already applied; else exit 2."""
    from smallchain.manifest import ManifestError, load_manifest, load_manifest_text
    from smallchain.resources import known_names

    with sc.db.transaction() as session:
        known = known_names(session)
    names = {"known_llms": known["llm"], "known_agents": known["agent"],
             "known_tools": known["tool"], "known_tasks": known["task"]}
    try:
        if str(file) == "-":
            return load_manifest_text(sys.stdin.read(), "<stdin>", **names)
        return load_manifest(file, **names)
    except ManifestError as exc:
        fail_lines(str(exc).splitlines() or [f"{file}: invalid manifest"], 2)


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import KombuError

    return (KombuError, ConnectionError)


def _broker_url() -> str:
    from smallchain.settings import Settings

    return _masked(Settings().broker_url)


def print_apply(sc: Smallchain, manifest: Manifest, result: ApplyResult) -> None:
    verbs = {label: "created" for label in result.created}
    verbs.update({label: "configured" for label in result.updated})
    verbs.update({label: "unchanged" for label in result.unchanged})
    for section, kind in queries.RESOURCE_KINDS.items():
        for item in getattr(manifest, section):
            label = f"{kind}/{item.name}"
            echo(f"{label} {verbs.get(label, 'unchanged')}")
    started = set(result.runs_started)
    for spec in manifest.runs:
        handle = sc.get_run(spec.name)
        if spec.name in started:
            echo(f"run/{spec.name} started (id {handle.id})")
        else:
            echo(f"run/{spec.name} unchanged (already exists: {handle.status}, id {handle.id})")


@app.command()
def apply(ctx: typer.Context, file: FileOption) -> None:
    """Create or update llms, agents, tools and tasks by name; start each run of `runs:` once.

    New runs are enqueued to the broker for the workers (`smallchain worker`). Applying the same
    file again changes nothing: every resource is `unchanged` and no run starts a second time.
    """
    path = _manifest_path(file)
    sc = state(ctx).smallchain()
    manifest = load_file(sc, path)
    try:
        result = sc.apply(manifest)
    except _broker_errors() as exc:
        fail(f"cannot reach the broker at {_broker_url()}: {_first_line(exc)}. The resources and runs are "
             "saved; once the broker is up, `smallchain sweep --stale-after 1` enqueues the runs "
             "(or process them here with `smallchain run -f`)")
    except (LookupError, ValueError) as exc:
        fail(_first_line(exc))
    print_apply(sc, manifest, result)


@app.command("run")
def run_file(
    ctx: typer.Context,
    file: FileOption,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1,
                                           help="Seconds to wait for the runs to finish.")] = 600.0,
    fresh: Annotated[bool, typer.Option("--fresh", help="Delete earlier runs with this file's run names first, "
                                                        "so they run again.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Do not print events, only the outputs.")] = False,
    concurrency: Annotated[int, typer.Option("-c", "--concurrency", min=1,
                                             help="Threads of the embedded worker.")] = 8,
) -> None:
    """Apply a file and process its runs right here, on an embedded worker: no Redis, no Celery.

    The store is the configured database (default: sqlite:///smallchain.db in the current
    directory). Events are printed as they happen, then each run's output. Exit code 0 when every
    run of the file succeeded, 1 otherwise. Run names are unique per database: running the same
    file again shows the earlier results (use --fresh to run them again).
    """
    from smallchain.cli import runner

    path = _manifest_path(file)
    from smallchain.inprocess import InProcessDispatcher

    sc = open_smallchain(embedded_threads=concurrency)
    worker = sc.dispatcher
    assert isinstance(worker, InProcessDispatcher)
    state(ctx)._sc = sc
    manifest = load_file(sc, path)
    if fresh:
        for spec in manifest.runs:
            _delete_by_name(sc, spec.name)
    # From here on the embedded worker may hold steps: every way out that is not the normal one
    # leaves at once (hard_exit) instead of waiting for them; the database keeps the runs' state.
    try:
        code = _process(sc, worker, manifest, timeout, quiet)
    except KeyboardInterrupt:
        typer.echo("interrupted: the runs stay in the database; `smallchain run -f` with the same file "
                   "picks them up again", err=True)
        runner.hard_exit(130)
    except typer.Exit as exc:
        runner.hard_exit(exc.exit_code)
    except BrokenPipeError:
        runner.hard_exit(1)
    except Exception as exc:
        typer.echo(f"error: {type(exc).__name__}: {_first_line(exc)}", err=True)
        runner.hard_exit(1)
    if not worker.wait_idle(10):
        runner.hard_exit(code)
    worker.close()
    sc.close()
    raise typer.Exit(code)


def _process(sc: Smallchain, worker: InProcessDispatcher, manifest: Manifest, timeout: float, quiet: bool) -> int:
    """Apply, follow, print the outcomes; the exit code (0: every run of the file succeeded)."""
    from smallchain.cli import runner

    after = queries.last_event_id(sc.db)
    try:
        result = sc.apply(manifest)
    except (LookupError, ValueError) as exc:
        fail(_first_line(exc))
    print_apply(sc, manifest, result)
    roots = [sc.get_run(spec.name).id for spec in manifest.runs]
    if not roots:
        echo("the file has no `runs:`; nothing to run")
        return 0
    flush()
    outcome = runner.follow(sc, worker, roots, after, timeout, show_events=not quiet)
    code = _print_outcomes(sc, manifest)
    if outcome.errors:
        error = outcome.errors[-1]
        fail(f"the embedded worker failed on a step: {type(error).__name__}: {_first_line(error)}")
    if not outcome.finished:
        active = [s.name for s in manifest.runs if sc.get_run(s.name).status in st.ACTIVE]
        fail(f"timed out after {timeout:g}s with runs still active: {', '.join(active)}; they stay in the "
             "database and `smallchain run -f` with the same file resumes them")
    return code


def _print_outcomes(sc: Smallchain, manifest: Manifest) -> int:
    code = 0
    for spec in manifest.runs:
        run = sc.get_run(spec.name).row
        echo()
        echo(f"==> {spec.name}: {run.status}")
        if run.status == st.SUCCEEDED:
            echo(run.output or "")
        else:
            code = 1
            if run.error:
                echo(f"error: {run.error}")
    flush()
    return code


def _delete_by_name(sc: Smallchain, name: str) -> None:
    from smallchain.api import RunNotFound

    try:
        handle = sc.get_run(name)
    except RunNotFound:
        return
    if handle.name != name:
        return  # matched an id or id prefix, not this name
    if handle.status in st.ACTIVE:
        sc.cancel(handle.id, "deleted by `smallchain run --fresh`")
    queries.delete_tree(sc.db, handle.id)
    echo(f"run/{name} deleted (--fresh)")


# --- get ----------------------------------------------------------------------------------------------


RUN_HEADERS = ["RUN NAME", "STATUS", "TASK", "AGENT", "ID", "DEPTH"]


def _run_cells(run: Any) -> list[str]:
    return [one_line(run.name), run.status, one_line(run.task_name), run.agent_name, run.id, str(run.depth)]


def find_run(ctx: typer.Context, name_or_id: str) -> Any:
    from smallchain.api import RunNotFound

    sc = state(ctx).smallchain()
    try:
        return sc.get_run(name_or_id).row
    except RunNotFound:
        fail(f"no run with name or id {name_or_id!r} (see `smallchain get runs`)")


def _print_runs(runs: list[Any], output: Format, single: bool = False) -> None:
    if output is Format.table:
        if not runs:
            echo("No runs.")
            return
        echo(table(RUN_HEADERS, [_run_cells(r) for r in runs]))
        return
    views = [queries.run_view(r) for r in runs]
    echo(dump(views[0] if single else views, output))


@get_app.command("runs")
def get_runs(
    ctx: typer.Context,
    output: OutputOption = Format.table,
    roots: Annotated[bool, typer.Option("--roots", help="Only top-level runs, not sub-agent runs.")] = False,
    status: Annotated[str | None, typer.Option("--status", help="Only runs with this status (e.g. Running).")]
    = None,
) -> None:
    """All runs, each followed by its child runs: RUN NAME, STATUS, TASK, AGENT, ID, DEPTH."""
    runs = queries.all_runs(state(ctx).smallchain().db, roots_only=roots)
    if status is not None:
        runs = [r for r in runs if r.status.lower() == status.lower()]
    _print_runs(runs, output)


@get_app.command("run")
def get_run(
    ctx: typer.Context,
    name_or_id: Annotated[str, typer.Argument(help="Run name, id, or id prefix (6+ characters).")],
    output: OutputOption = Format.table,
) -> None:
    """One run (use `describe run` for its messages, tool calls and child runs)."""
    _print_runs([find_run(ctx, name_or_id)], output, single=True)


def _resource_command(section: str, kind: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        name: Annotated[str | None, typer.Argument(help="Only the one with this name.")] = None,
        output: OutputOption = Format.table,
    ) -> None:
        rows = queries.resources(state(ctx).smallchain().db, kind, name)
        if name is not None and not rows:
            fail(f"no {kind} named {name!r} (see `smallchain get {section}`)")
        if output is not Format.table:
            echo(dump([r.spec for r in rows], output))
            return
        if not rows:
            echo(f"No {section}.")
            return
        headers = ["NAME", *queries.RESOURCE_HEADERS[kind], "UPDATED"]
        echo(table(headers, [[r.name, *queries.resource_row(kind, r), pretty_time(r.updated_at)] for r in rows]))

    command.__doc__ = f"Applied {section}: the table, or their specs as stored (-o json|yaml)."
    return command


for _section, _kind in queries.RESOURCE_KINDS.items():
    get_app.command(_section)(_resource_command(_section, _kind))
    get_app.command(_kind, hidden=True)(_resource_command(_section, _kind))


def _scope_of(ctx: typer.Context, run: str | None) -> set[str] | None:
    if run is None:
        return None
    row = find_run(ctx, run)
    return queries.scope_ids(state(ctx).smallchain().db, [row.id])


TOOLCALL_HEADERS = ["ID", "RUN", "AGENT", "NAME", "STATUS", "ARGUMENTS", "RESULT", "DURATION"]


@get_app.command("toolcalls")
def get_toolcalls(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="Only this run and its child runs.")] = None,
    waiting: Annotated[bool, typer.Option("--waiting", help="Only calls waiting for a human or a callback.")]
    = False,
    output: OutputOption = Format.table,
) -> None:
    """Tool calls: arguments, status, result or error, and timings."""
    scope = _scope_of(ctx, run)
    calls = queries.tool_calls(state(ctx).smallchain().db, scope, waiting=waiting)
    if output is not Format.table:
        echo(dump([queries.tool_call_view(c, r) for c, r in calls], output))
        return
    if not calls:
        echo("No tool calls.")
        return
    rows = []
    for call, owner in calls:
        view = queries.tool_call_view(call)
        outcome = call.result if call.status == st.Call.SUCCEEDED else call.error
        rows.append([call.id, queries.run_label(owner), owner.agent_name, call.name, call.status,
                     one_line(call.arguments, 40), one_line(outcome, 40), human_duration(view["duration_ms"])])
    echo(table(TOOLCALL_HEADERS, rows))


get_app.command("tool-calls", hidden=True)(get_toolcalls)


@get_app.command("events")
def get_events(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="Only this run and its child runs.")] = None,
    pretty: Annotated[bool, typer.Option("--pretty", help="`[2024-07-28 12:00:10] [INFO] message` lines "
                                                          "(UTC) instead of JSON lines.")] = False,
    follow_: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new events until every run in "
                                                                 "scope has finished.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.05, hidden=True)] = 0.5,
) -> None:
    """Events, oldest first: JSON lines, or the human format with --pretty."""
    db = state(ctx).smallchain().db
    root = find_run(ctx, run).id if run is not None else None
    after = 0
    while True:
        scope = queries.scope_ids(db, [root]) if root is not None else None
        done = queries.all_terminal(db, scope) if follow_ else True
        while True:
            batch = queries.events(db, after, scope)
            for event in batch:
                after = event.row.id
                if pretty:
                    echo(pretty_event(event.row.ts, event.row.level, event.row.message))
                else:
                    echo(json.dumps(event.view(), ensure_ascii=False, default=str))
            if len(batch) < 1000:
                break
        flush()
        if done:
            return
        time.sleep(interval)


# --- describe -----------------------------------------------------------------------------------------


@describe_app.command("run")
def describe_run(
    ctx: typer.Context,
    name_or_id: Annotated[str, typer.Argument(help="Run name, id, or id prefix (6+ characters).")],
    output: OutputOption = Format.table,
) -> None:
    """The context window as the LLM saw it, tool calls, child runs, token usage and LLM calls."""
    row = find_run(ctx, name_or_id)
    data = describe_data(state(ctx).smallchain(), row.id)
    if output is Format.table:
        echo(render_describe(data))
    else:
        echo(dump(data, output))


# --- cancel, delete, sweep ----------------------------------------------------------------------------


@cancel_app.command("run")
def cancel_run(
    ctx: typer.Context,
    name_or_id: Annotated[str, typer.Argument(help="Run name, id, or id prefix (6+ characters).")],
    reason: Annotated[str, typer.Option("--reason", help="Recorded as the run's error.")] = "cancelled by the user",
) -> None:
    """Cancel a run and its child runs; open tool calls are closed with a cancellation result."""
    row = find_run(ctx, name_or_id)
    label = queries.run_label(row)
    if row.status in st.TERMINAL:
        echo(f"run/{label} is already {row.status}; nothing to cancel")
        return
    sc = state(ctx).smallchain()
    try:
        sc.cancel(row.id, reason)
    except _broker_errors() as exc:
        typer.echo(f"warning: run/{label} is cancelled, but its parent could not be told through the broker at "
                   f"{_broker_url()} ({_first_line(exc)}); the sweeper will do it", err=True)
    echo(f"run/{label} cancelled")


@delete_app.command("run")
def delete_run(
    ctx: typer.Context,
    name_or_id: Annotated[str, typer.Argument(help="Run name, id, or id prefix (6+ characters).")],
    force: Annotated[bool, typer.Option("--force", help="Cancel the run first if it is still active.")] = False,
) -> None:
    """Delete a top-level run with its child runs, messages, tool calls, LLM calls and events."""
    row = find_run(ctx, name_or_id)
    label = queries.run_label(row)
    if row.parent_run_id is not None:
        fail(f"run {label} is a child of run {row.parent_run_id}; delete the top-level run "
             f"{row.root_run_id} instead (its child runs go with it)")
    sc = state(ctx).smallchain()
    if row.status in st.ACTIVE:
        if not force:
            fail(f"run {label} is {row.status}; cancel it first (`smallchain cancel run {label!r}`) "
                 "or delete it with --force")
        sc.cancel(row.id, "deleted by the user")
    count = queries.delete_tree(sc.db, row.id)
    children = f" and {count - 1} child run{'s' if count != 2 else ''}" if count > 1 else ""
    echo(f"run/{label} deleted{children}")


@app.command()
def sweep(
    ctx: typer.Context,
    stale_after: Annotated[float | None, typer.Option(
        "--stale-after", min=0, help="Seconds without progress before a step counts as stalled "
                                     "(default: SMALLCHAIN_SWEEP_STALE_AFTER, 300).")] = None,
) -> None:
    """Re-enqueue steps that should be in flight but have not moved (what the beat sweeper does)."""
    from smallchain.settings import Settings

    settings = Settings()
    if stale_after is not None:
        settings = settings.model_copy(update={"sweep_stale_after": stale_after})
    sc = open_smallchain(settings=settings)
    try:
        count = sc.sweep()
    except _broker_errors() as exc:
        fail(f"cannot reach the broker at {_broker_url()}: {_first_line(exc)}")
    echo(f"re-enqueued {count} stalled step{'s' if count != 1 else ''}")


# --- worker -------------------------------------------------------------------------------------------


class Pool(StrEnum):
    threads = "threads"
    prefork = "prefork"
    solo = "solo"


QUEUES = ("llm", "tools", "delegation")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, **CONTEXT})
def worker(
    ctx: typer.Context,
    queues: Annotated[str, typer.Option("-Q", "--queues", help="Comma-separated queues to consume.")]
    = ",".join(QUEUES),
    concurrency: Annotated[int, typer.Option("-c", "--concurrency", min=1, help="Pool size.")] = 8,
    pool: Annotated[Pool, typer.Option("-P", "--pool", help="Celery pool.")] = Pool.threads,
    loglevel: Annotated[str, typer.Option("-l", "--loglevel", help="Log level.")] = "INFO",
    hostname: Annotated[str | None, typer.Option("-n", "--hostname", help="Node name, e.g. llm@%h.")] = None,
    beat: Annotated[bool, typer.Option("-B", "--beat", help="Also run the sweeper schedule (celery beat) "
                                                            "in this worker; one per deployment.")] = False,
) -> None:
    """Start a Celery worker (with -E, so Flower sees it). Extra arguments go to `celery worker`."""
    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in chosen if q not in QUEUES]
    if not chosen or unknown:
        fail(f"unknown queue(s) {', '.join(unknown) or '(none given)'}; the queues are: {', '.join(QUEUES)}", 2)
    # Migrate before consuming, so a worker on a fresh database does not fail its first step. Several
    # workers starting at once may race on it; the one that loses finds the schema made by another.
    from smallchain.api import Smallchain

    try:
        Smallchain().close()
    except Exception as exc:
        typer.echo(f"warning: could not bring the database schema up to date: {_first_line(exc)}", err=True)
    from smallchain.worker.app import app as celery_app

    argv = ["worker", "-Q", ",".join(chosen), "-P", pool.value, "-c", str(concurrency), "-E", "-l", loglevel]
    if hostname:
        argv += ["-n", hostname]
    if beat:
        argv.append("-B")
    celery_app.worker_main([*argv, *ctx.args])


# --- extensions ---------------------------------------------------------------------------------------


def _register_extensions() -> None:
    """approve / reject / respond / send / serve live in smallchain.cli.waits, when present."""
    try:
        from smallchain.cli import waits
    except ModuleNotFoundError as exc:
        if exc.name != "smallchain.cli.waits":
            typer.echo(f"warning: approve/reject/respond/send/serve are unavailable: {exc}", err=True)
        return
    except ImportError as exc:
        typer.echo(f"warning: approve/reject/respond/send/serve are unavailable: {exc}", err=True)
        return
    waits.register(app)


_register_extensions()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`smallchain get events | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("SMALLCHAIN_DEBUG"):
            raise
        typer.echo(f"error: {type(exc).__name__}: {_first_line(exc)} (SMALLCHAIN_DEBUG=1 shows the traceback)",
                   err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
