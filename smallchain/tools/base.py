"""The tool executor interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from smallchain.spec import ToolSpec


class ToolError(Exception):
    """The tool ran and failed; the message becomes the tool result the LLM sees."""


@dataclass(frozen=True)
class ToolContext:
    run_id: str
    call_id: str
    timeout: float


class ToolExecutor(Protocol):
    def execute(self, tool: ToolSpec, arguments: dict[str, Any], context: ToolContext) -> str: ...
