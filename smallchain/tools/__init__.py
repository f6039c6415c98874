"""Tools: what the LLM is offered, how its arguments are checked, and who executes a call."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from smallchain.spec import ToolSpec
from smallchain.tools.base import ToolContext, ToolError, ToolExecutor
from smallchain.tools.builtin import BUILTIN_PARAMETERS, BuiltinExecutor, builtin_description
from smallchain.tools.function import FunctionExecutor, function_schema, validate_function_arguments

__all__ = [
    "ArgumentError", "ToolContext", "ToolError", "ToolExecutor",
    "get_executor", "parse_arguments", "tool_definition",
]

DELEGATION_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"message": {"type": "string", "description": "The message to send to the agent"}},
    "required": ["message"],
    "additionalProperties": False,
}


class ArgumentError(ValueError):
    """The LLM's arguments for a call are not JSON or do not fit the tool's schema."""


def parameters_of(tool: ToolSpec) -> dict[str, Any]:
    if tool.parameters is not None:
        return tool.parameters
    if tool.builtin:
        return BUILTIN_PARAMETERS
    if tool.function:
        return function_schema(tool.function)[1]
    if tool.agent:
        return DELEGATION_PARAMETERS
    return {"type": "object", "properties": {}}


def description_of(tool: ToolSpec) -> str:
    if tool.description:
        return tool.description
    if tool.builtin:
        return builtin_description(tool.builtin)
    if tool.function:
        return function_schema(tool.function)[0]
    return ""


def tool_definition(tool: ToolSpec) -> dict[str, Any]:
    """The entry in the request's ``tools`` list, exactly as sent to the LLM."""
    function: dict[str, Any] = {"name": tool.name, "parameters": parameters_of(tool)}
    description = description_of(tool)
    if description:
        function["description"] = description
    return {"type": "function", "function": function}


def parse_arguments(tool: ToolSpec, raw: str) -> dict[str, Any]:
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"arguments are not valid JSON ({exc.msg} at position {exc.pos}): {raw!r}") from exc
    if not isinstance(arguments, dict):
        raise ArgumentError(f"arguments must be a JSON object, got {type(arguments).__name__}: {raw!r}")
    if tool.function and tool.parameters is None:
        try:
            return validate_function_arguments(tool.function, arguments)
        except ValueError as exc:
            raise ArgumentError(f"arguments do not fit the tool's parameters: {exc}") from exc
    validator = jsonschema.Draft202012Validator(parameters_of(tool))
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.absolute_path) or 'arguments'}: {e.message}" for e in errors
        )
        raise ArgumentError(f"arguments do not fit the tool's parameters: {detail}")
    return arguments


def get_executor(tool: ToolSpec) -> ToolExecutor:
    kind = tool.kind
    if kind == "builtin":
        return BuiltinExecutor()
    if kind == "function":
        return FunctionExecutor()
    if kind == "command":
        from smallchain.tools.command import CommandExecutor

        return CommandExecutor()
    raise ToolError(f"tool {tool.name!r} of kind {kind!r} is not executed by a worker")
