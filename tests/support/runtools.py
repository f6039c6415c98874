"""Python-function tools for integration tests, imported by real worker processes.

Each execution appends a line to the file named by SMALLCHAIN_TEST_LEDGER, so a test can count
exactly how many times a tool ran, across processes and crashes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def _record(name: str, **arguments: object) -> None:
    ledger = os.environ.get("SMALLCHAIN_TEST_LEDGER")
    if ledger:
        with Path(ledger).open("a") as f:
            f.write(json.dumps({"tool": name, **arguments}) + "\n")


def ledger_entries(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def slow_echo(text: str, seconds: float = 0.0) -> str:
    """Wait, then return the text.

    Args:
        text: What to return.
        seconds: How long to wait first.
    """
    _record("slow_echo", text=text)
    time.sleep(seconds)
    return text


def explode(reason: str) -> str:
    """Always raises."""
    _record("explode", reason=reason)
    raise RuntimeError(f"kaboom: {reason}")


def lookup(key: str) -> dict[str, str]:
    """Return a record for the key.

    Args:
        key: The key to look up.
    """
    _record("lookup", key=key)
    return {"key": key, "value": key.upper()}
