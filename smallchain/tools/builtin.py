"""Builtin arithmetic tools."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from smallchain.spec import ToolSpec
from smallchain.tools.base import ToolContext, ToolError

_OPERATIONS: dict[str, tuple[Callable[[float, float], float], str]] = {
    "add": (operator.add, "Add two numbers: a + b."),
    "subtract": (operator.sub, "Subtract two numbers: a - b."),
    "multiply": (operator.mul, "Multiply two numbers: a * b."),
    "divide": (operator.truediv, "Divide two numbers: a / b."),
}

BUILTIN_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "a": {"type": "number", "description": "The first number"},
        "b": {"type": "number", "description": "The second number"},
    },
    "required": ["a", "b"],
    "additionalProperties": False,
}


def builtin_description(name: str) -> str:
    return _OPERATIONS[name][1]


def format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class BuiltinExecutor:
    def execute(self, tool: ToolSpec, arguments: dict[str, Any], context: ToolContext) -> str:
        assert tool.builtin is not None
        func = _OPERATIONS[tool.builtin][0]
        try:
            return format_number(func(arguments["a"], arguments["b"]))
        except ZeroDivisionError as exc:
            raise ToolError("division by zero") from exc
