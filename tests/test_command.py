from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from smallchain.spec import ToolSpec
from smallchain.tools.base import ToolContext, ToolError
from smallchain.tools.command import CommandExecutor

CONTEXT = ToolContext(run_id="run-1", call_id="call-1", timeout=30)


def command_tool(kind: str, command: str, **extra: Any) -> ToolSpec:
    return ToolSpec.model_validate({"name": "t", "executor": {kind: {"command": command, **extra}}})


def run(kind: str, command: str, arguments: dict[str, Any], **extra: Any) -> str:
    return CommandExecutor().execute(command_tool(kind, command, **extra), arguments, CONTEXT)


def test_seed_subtract_tool_as_written() -> None:
    # Exactly the seed's block scalar, trailing newline, image and requirements included.
    tool = ToolSpec.model_validate({
        "name": "subtract",
        "description": "subtract two numbers",
        "executor": {"python": {"image": "python:3.12", "command": 'python -c "print(a - b)"\n',
                                "requirements": []}},
    })
    assert CommandExecutor().execute(tool, {"a": 10, "b": 3}, CONTEXT) == "7"
    assert CommandExecutor().execute(tool, {"a": 2.5, "b": 1}, CONTEXT) == "1.5"


def test_hostile_string_reaches_the_program_verbatim(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"""it's "quoted" $(touch {marker}) `touch {marker}` ; touch {marker} \\n $HOME"""
    assert run("python", 'python -c "print(s)"', {"s": hostile}) == hostile
    assert run("bash", 'printf "%s" "$s"', {"s": hostile}) == hostile
    assert run("bash", "echo $s", {"s": hostile}) == hostile.replace("  ", " ")
    assert not marker.exists()


def test_bash_reads_arguments_from_the_environment() -> None:
    assert run("bash", "echo $((a - b))", {"a": 10, "b": 3}) == "7"
    assert run("bash", 'echo "$items"', {"items": [1, "x"]}) == '[1, "x"]'


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_gets_arguments_as_globals() -> None:
    assert run("node", 'node -e "console.log(a - b)"', {"a": 10, "b": 3}) == "7"
    # An argument may not replace what the runtime already defines.
    assert run("node", 'node -e "console.log(typeof process.exit)"', {"process": 1}) == "function"


def test_a_nul_character_reaches_python_intact() -> None:
    assert run("python", 'python -c "print(repr(s))"', {"s": "a\0b"}) == repr("a\0b")


def test_python_arguments_do_not_replace_builtins() -> None:
    assert run("python", 'python -c "print(len(x))"', {"len": 5, "x": [1, 2]}) == "2"


def test_arguments_cannot_set_dangerous_environment_variables(tmp_path: Path) -> None:
    evil = tmp_path / "evil.sh"
    evil.write_text(f"touch {tmp_path / 'pwned'}\n")
    out = run("bash", 'echo "${BASH_ENV:-unset} ${LD_PRELOAD:-unset}"',
              {"BASH_ENV": str(evil), "LD_PRELOAD": "/nonexistent.so"})
    assert out == "unset unset"
    assert not (tmp_path / "pwned").exists()


def test_arguments_as_json_on_stdin_and_in_the_environment() -> None:
    reader = "python -c \"import json,sys; print(json.load(sys.stdin)['x'])\""
    assert run("python", reader, {"x": "hello"}) == "hello"
    env_reader = "python -c \"import json,os; print(json.loads(os.environ['SMALLCHAIN_ARGUMENTS'])['x'])\""
    assert run("python", env_reader, {"x": 42}) == "42"


def test_non_zero_exit_is_a_tool_error_with_stderr() -> None:
    with pytest.raises(ToolError, match=r"exited with code 3: boom"):
        run("python", "python -c \"import sys; sys.stderr.write('boom'); sys.exit(3)\"", {})
    with pytest.raises(ToolError, match="NameError"):
        run("python", 'python -c "print(undefined_name)"', {})


def test_stderr_is_cut_to_its_tail() -> None:
    with pytest.raises(ToolError) as err:
        run("python", "python -c \"import sys; sys.stderr.write('x' * 5000 + 'END'); sys.exit(1)\"", {})
    assert str(err.value).endswith("END")
    assert len(str(err.value)) < 2100


def test_timeout_kills_the_command_and_its_children() -> None:
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"command timed out after 0.5s"):
        run("bash", "sleep 30 & sleep 30", {}, timeout=0.5)
    assert time.monotonic() - started < 10


def test_context_timeout_applies_without_a_spec_timeout() -> None:
    tool = command_tool("python", 'python -c "import time; time.sleep(30)"')
    with pytest.raises(ToolError, match=r"timed out after 0.3s"):
        CommandExecutor().execute(tool, {}, ToolContext(run_id="r", call_id="c", timeout=0.3))


def test_missing_program_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="cannot start 'no-such-program-xyz'"):
        run("python", "no-such-program-xyz --flag", {})


def test_only_the_trailing_newline_is_stripped() -> None:
    assert run("python", "python -c \"print('  a\\n\\nb  ')\"", {}) == "  a\n\nb  "
