"""Loading ``smallchain.yaml``: every problem is reported with its file, line and field.

Nothing is expanded here: ``${VAR}`` stays as written, so secrets are never stored with the
resources; whoever uses a value calls :func:`smallchain.envref.expand_env` at that moment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from smallchain.spec import Manifest, check_references

SECTIONS = ("llms", "agents", "tools", "tasks", "runs")


@dataclass(frozen=True)
class LocatedProblem:
    file: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        position = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{position}: {self.where}: {self.message}" if self.where else f"{position}: {self.message}"


class ManifestError(Exception):
    def __init__(self, problems: list[LocatedProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_manifest(
    source: str | Path | dict[str, Any],
    known_llms: set[str] = frozenset(),  # type: ignore[assignment]
    known_agents: set[str] = frozenset(),  # type: ignore[assignment]
    known_tools: set[str] = frozenset(),  # type: ignore[assignment]
    known_tasks: set[str] = frozenset(),  # type: ignore[assignment]
) -> Manifest:
    """A manifest from a YAML file's path or an already parsed dict.

    ``known_*`` are names applied earlier, which the manifest may refer to.
    """
    known = {"known_llms": known_llms, "known_agents": known_agents,
             "known_tools": known_tools, "known_tasks": known_tasks}
    if isinstance(source, dict):
        return _validate(source, None, "<dict>", known)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([LocatedProblem(str(source), None, "", f"cannot read the file: {exc}")]) from exc
    return load_manifest_text(text, str(source), **known)


def load_manifest_text(
    text: str,
    filename: str = "<string>",
    known_llms: set[str] = frozenset(),  # type: ignore[assignment]
    known_agents: set[str] = frozenset(),  # type: ignore[assignment]
    known_tools: set[str] = frozenset(),  # type: ignore[assignment]
    known_tasks: set[str] = frozenset(),  # type: ignore[assignment]
) -> Manifest:
    known = {"known_llms": known_llms, "known_agents": known_agents,
             "known_tools": known_tools, "known_tasks": known_tasks}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError([_yaml_problem(exc, text, filename)]) from None
    duplicates = list(_duplicate_keys(root, filename))
    if duplicates:
        raise ManifestError(duplicates)
    return _validate(data, root, filename, known)


def _validate(data: Any, root: yaml.Node | None, filename: str, known: dict[str, set[str]]) -> Manifest:
    if not isinstance(data, dict):
        got = "nothing (the file is empty)" if data is None else _describe(data)
        line = root.start_mark.line + 1 if root is not None else None
        raise ManifestError([LocatedProblem(
            filename, line, "", f"the top level must be a mapping with sections {', '.join(SECTIONS)}; got {got}"
        )])
    problems = [
        _locate((key,), root, data, filename,
                f"unknown section {key!r}; sections are: {', '.join(SECTIONS)}")
        for key in data if key not in SECTIONS
    ]
    # An emptied section (every entry commented out) parses as null: that means no entries.
    sections = {k: ([] if v is None else v) for k, v in data.items() if k in SECTIONS}
    try:
        manifest = Manifest.model_validate(sections)
    except ValidationError as exc:
        problems += _validation_problems(exc, root, data, filename)
    if problems:
        raise ManifestError(_sorted(problems))
    references = check_references(manifest, **known)
    if references:
        raise ManifestError(_sorted([_locate(p.loc, root, data, filename, p.msg) for p in references]))
    return manifest


def _sorted(problems: list[LocatedProblem]) -> list[LocatedProblem]:
    return sorted(problems, key=lambda p: p.line if p.line is not None else 0)


# --- YAML syntax -------------------------------------------------------------------------------


def _yaml_problem(exc: yaml.YAMLError, text: str, filename: str) -> LocatedProblem:
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return LocatedProblem(filename, None, "", f"invalid YAML: {exc}")
    mark = exc.problem_mark
    message = f"invalid YAML: {exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    line = mark.line + 1
    if exc.context and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    unclosed = _runaway_quote(text, mark.line)
    if unclosed is not None:
        # The parser only notices where the stray quote's string happens to end; the mistake
        # is where it starts, so that is the line to show.
        start, end = unclosed
        line = start
        message += (f"; the quoted string that starts on line {start} runs on to line {end}: "
                    "a closing quote is probably missing")
    return LocatedProblem(filename, line, "", message)


def _runaway_quote(text: str, error_line: int) -> tuple[int, int] | None:
    """The last multi-line quoted string before the error, as 1-based (start, end) lines."""
    found = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.line > error_line:
                break
            if (isinstance(token, yaml.ScalarToken) and token.style in ('"', "'")
                    and token.end_mark.line > token.start_mark.line):
                found = (token.start_mark.line + 1, token.end_mark.line + 1)
    except yaml.YAMLError:
        pass
    return found


def _duplicate_keys(node: yaml.Node | None, filename: str, path: str = "") -> Iterator[LocatedProblem]:
    # PyYAML silently keeps the last of two equal keys; the first would be lost without a word.
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            child = f"{path}.{key.value}" if path else str(key.value)
            if isinstance(key, yaml.ScalarNode) and key.value in seen:
                yield LocatedProblem(filename, line, path, f"duplicate key {key.value!r} (first on line "
                                                           f"{seen[key.value]}); only one is kept")
            elif isinstance(key, yaml.ScalarNode):
                seen[key.value] = line
            yield from _duplicate_keys(value, filename, child)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, filename, f"{path}[{i}]")


# --- locations -------------------------------------------------------------------------------

# Pydantic puts the member type of a union in an error's path (`str`, `AgentRef`,
# `function-after[...]`); such parts are not in the document and are skipped.
_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
_TYPE_TAGS = {"str", "int", "float", "bool", "none", "list", "dict"}


def _locate(loc: tuple[str | int, ...], root: yaml.Node | None, data: Any, filename: str,
            message: str) -> LocatedProblem:
    where, line = _walk(loc, root, data)
    return LocatedProblem(filename, line, where, message)


def _walk(loc: tuple[str | int, ...], node: yaml.Node | None, data: Any) -> tuple[str, int | None]:
    where = ""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data):
            where += f"[{part}]"
            data = data[part]
            if isinstance(node, yaml.SequenceNode):
                node = node.value[part]
                line = node.start_mark.line + 1
            continue
        if isinstance(data, dict) and part in data:
            where += f".{part}" if where else str(part)
            data = data[part]
            if isinstance(node, yaml.MappingNode):
                # None for keys YAML rewrote (`<<` merges, `yes` as true): the line stays the parent's.
                pair = next(((k, v) for k, v in node.value if k.value == part), None)
                node = pair[1] if pair else None
                line = pair[0].start_mark.line + 1 if pair else line
            continue
        if isinstance(part, str) and (not _FIELD.match(part) or part in _TYPE_TAGS):
            continue
        # Not in the document (a missing field): shown at the mapping that should hold it.
        where += f".{part}" if where else str(part)
        break
    return where, line


# --- validation messages ---------------------------------------------------------------------

_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
}


def _validation_problems(exc: ValidationError, root: yaml.Node | None, data: Any,
                         filename: str) -> list[LocatedProblem]:
    grouped: dict[str, tuple[int | None, list[dict[str, Any]]]] = {}
    for error in exc.errors():
        where, line = _walk(tuple(error["loc"]), root, data)
        grouped.setdefault(where, (line, []))[1].append(dict(error))
    problems = []
    for where, (line, errors) in grouped.items():
        # Without a union, nothing inside a value of the wrong type is checked; so errors below
        # this one mean its type fitted another member of a union, and only they are relevant.
        deeper = any(other.startswith((f"{where}.", f"{where}[")) for other in grouped)
        errors = [e for e in errors if not (deeper and e["type"] in _EXPECTED)]
        if errors:
            problems.append(LocatedProblem(filename, line, where, _message(errors)))
    return problems


def _message(errors: list[dict[str, Any]]) -> str:
    expected = [_EXPECTED.get(e["type"]) for e in errors]
    if all(expected):
        # One value tried against each member of a union: say what would have been accepted.
        wanted = " or ".join(dict.fromkeys(str(x) for x in expected))
        value = errors[0]["input"]
        hint = " (quote it to make it text)" if "a string" in expected and _is_scalar(value) else ""
        return f"expected {wanted}, got {_describe(value)}{hint}"
    return "; ".join(_one_message(e) for e in errors)


def _one_message(error: dict[str, Any]) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "missing":
        return f"missing required field {loc[-1]!r}"
    if kind == "extra_forbidden":
        return f"unknown field {loc[-1]!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        return f"{message.replace('Input should be', 'expected')}, got {_describe(error['input'])}"
    if kind == "string_pattern_mismatch":
        return f"expected text matching {error['ctx']['pattern']}, got {_describe(error['input'])}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{message.replace('Input should be', 'expected a value')}, got {_describe(error['input'])}"
    return message


def _is_scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float) or value is None


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
