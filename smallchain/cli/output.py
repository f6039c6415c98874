"""Printing for the CLI: aligned plain tables, JSON and YAML, event lines, error messages.

Everything is plain text (no colour, no wrapping to the terminal's width) so that output piped
to another program reads the same as on screen.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NoReturn

import typer
import yaml

PRETTY_TIME = "%Y-%m-%d %H:%M:%S"
NONE = "-"


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr (``error: ...``) and exit ``code``: 2 for bad input, 1 otherwise."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def fail_lines(lines: Sequence[str], code: int = 2) -> NoReturn:
    """Several problems, one per line, as they are (``file:line: where: message``)."""
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def utc(value: datetime) -> datetime:
    """Aware UTC. SQLite hands back naive datetimes, which the store always writes in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat().replace("+00:00", "Z")


def pretty_time(value: datetime) -> str:
    return utc(value).strftime(PRETTY_TIME)


def pretty_event(ts: datetime, level: str, message: str, limit: int | None = None) -> str:
    """The seed README's format: ``[2024-07-28 12:00:10] [INFO] Agent 'assistant' is using tool: add``.

    One event, one line: line breaks in the message are written as ``\\n``. With ``limit``,
    a longer message is cut there and ends in ``...``.
    """
    text = message.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"[{pretty_time(ts)}] [{level}] {text}"


def duration_ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((utc(end) - utc(start)).total_seconds() * 1000)


def human_duration(ms: int | None) -> str:
    if ms is None:
        return NONE
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 120:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def one_line(text: str | None, limit: int | None = None) -> str:
    """A table cell: newlines and tabs become spaces; cut at ``limit`` characters with an ellipsis."""
    if text is None or text == "":
        return NONE
    flat = " ".join(str(text).split())
    if limit is not None and len(flat) > limit:
        return flat[: limit - 3] + "..."
    return flat or NONE


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to the widest cell, three spaces apart, like ``kubectl get``."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *[list(r) for r in rows]]:
        lines.append("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)


def dump(data: Any, fmt: Format) -> str:
    if fmt is Format.yaml:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def echo(text: str = "") -> None:
    typer.echo(text)


def flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
