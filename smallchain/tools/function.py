"""Python functions as tools, given by import path (``package.module:function``).

The JSON schema comes from the signature's type hints and the docstring's ``Args:`` section;
arguments are validated by pydantic against the same signature before the call.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from smallchain.spec import ToolSpec
from smallchain.tools.base import ToolContext, ToolError

_ARG_LINE = re.compile(r"^\s{2,}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


class ToolImportError(ValueError):
    pass


@lru_cache(maxsize=256)
def load_function(path: str) -> Callable[..., Any]:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ToolImportError(f"{path!r} is not an import path like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ToolImportError(f"cannot import module {module_name!r} for tool function {path!r}: {exc}") from exc
    func = getattr(module, attr, None)
    if not callable(func):
        raise ToolImportError(f"module {module_name!r} has no function {attr!r}")
    return func


def _docstring_parts(func: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    doc = inspect.getdoc(func) or ""
    summary = doc.split("\n\n", 1)[0].strip()
    params: dict[str, str] = {}
    in_args = False
    for line in (inspect.getdoc(func) or "").splitlines():
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if in_args:
            match = _ARG_LINE.match("  " + line)
            if match:
                params[match.group(1)] = match.group(2).strip()
            elif line and not line.startswith(" "):
                in_args = False
    return summary, params


@lru_cache(maxsize=256)
def arguments_model(path: str) -> type[BaseModel]:
    func = load_function(path)
    _, param_docs = _docstring_parts(func)
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, Field(default, description=param_docs.get(name)))
    return create_model(
        f"{func.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields
    )


def function_schema(path: str) -> tuple[str, dict[str, Any]]:
    """(description, JSON schema of the parameters) for a function tool."""
    summary, _ = _docstring_parts(load_function(path))
    schema = arguments_model(path).model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return summary, schema


def validate_function_arguments(path: str, arguments: dict[str, Any]) -> dict[str, Any]:
    try:
        model = arguments_model(path).model_validate(arguments)
    except ValidationError as exc:
        raise ValueError(_validation_text(exc)) from exc
    return {name: getattr(model, name) for name in type(model).model_fields}


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors()
    )


class FunctionExecutor:
    def execute(self, tool: ToolSpec, arguments: dict[str, Any], context: ToolContext) -> str:
        assert tool.function is not None
        func = load_function(tool.function)
        try:
            result = func(**arguments)
        except Exception as exc:  # the tool's own failure is the LLM's to see, not ours to crash on
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(result, str):
            return result
        try:
            import json

            return json.dumps(result, default=str)
        except (TypeError, ValueError):
            return str(result)
