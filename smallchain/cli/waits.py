"""CLI commands for what runs wait on: ``approve``, ``reject``, ``respond``, ``send`` and ``serve``.

``register(app)`` adds them to the ``smallchain`` Typer app. Every command builds its
Smallchain from the environment (SMALLCHAIN_DATABASE_URL, SMALLCHAIN_BROKER_URL, ...) and reports
a failure as one line on stderr with exit code 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from smallchain.api import Smallchain


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def _smallchain() -> Iterator[Smallchain]:
    """The Smallchain of the environment; any error is one line and exit 1, never a traceback."""
    from smallchain.api import Smallchain

    try:
        sc = Smallchain()
    except Exception as exc:
        _fail(f"cannot open the store: {_one_line(exc)}")
    try:
        yield sc
    except typer.Exit:
        raise
    except (LookupError, ValueError, PermissionError) as exc:
        _fail(_one_line(exc))
    except Exception as exc:
        _fail(f"{type(exc).__name__}: {_one_line(exc)}")
    finally:
        sc.close()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def waiting_rows(sc: Smallchain) -> list[dict[str, Any]]:
    """Every call waiting on a person or an external system, as JSON-ready dicts (for ``get toolcalls --waiting``).

    Keys: id, run_id, agent, tool, status, arguments, since, timeout_at.
    """
    return [w.as_dict() for w in sc.waiting()]


def approve(call_id: Annotated[str, typer.Argument(help="The tool call awaiting approval.")]) -> None:
    """Approve a tool call that awaits approval: it goes ahead."""
    with _smallchain() as sc:
        new_status = sc.approve(call_id)
    typer.echo(f"tool call {call_id} approved (now {new_status})")


def reject(
    call_id: Annotated[str, typer.Argument(help="The tool call awaiting approval.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why; the agent is told.")],
) -> None:
    """Reject a tool call that awaits approval; the agent sees the reason."""
    if not reason.strip():
        _fail("--reason must not be empty")
    with _smallchain() as sc:
        sc.reject(call_id, reason)
    typer.echo(f"tool call {call_id} rejected")


def respond(
    call_id: Annotated[str, typer.Argument(help="The human tool call awaiting an answer.")],
    text: Annotated[str, typer.Argument(help="The answer; it is the tool's result.")],
) -> None:
    """Answer a question an agent asked through a human tool."""
    with _smallchain() as sc:
        sc.respond(call_id, text)
    typer.echo(f"tool call {call_id} answered")


def send(
    run: Annotated[str, typer.Argument(help="Run id or name.")],
    text: Annotated[str, typer.Argument(help="The message.")],
) -> None:
    """Send a message to a run: its agent sees it at its next turn (a finished run is resumed)."""
    if not text.strip():
        _fail("the message is empty")
    with _smallchain() as sc:
        handle = sc.send(run, text)
        status = handle.status
    typer.echo(f"message sent to run {handle.id} ({status})")


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the HTTP API: tool-call callbacks, approvals, answers and messages (see smallchain.server)."""
    import uvicorn

    from smallchain.server import create_app

    with _smallchain() as sc:
        if not sc.settings.api_key:
            typer.echo("warning: SMALLCHAIN_API_KEY is not set; only callbacks and /healthz will answer", err=True)
        uvicorn.run(create_app(sc), host=host, port=port)


COMMANDS: dict[str, Callable[..., None]] = {
    "approve": approve, "reject": reject, "respond": respond, "send": send, "serve": serve,
}


def register(app: typer.Typer) -> None:
    for name, command in COMMANDS.items():
        app.command(name)(command)


def main() -> None:
    """These commands alone (``python -m smallchain.cli.waits``)."""
    app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
    register(app)
    app()


if __name__ == "__main__":
    main()
