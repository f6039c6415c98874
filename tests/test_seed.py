"""The seed README's example, quote fixed and `subtract` switched on, through the real CLI against the
OpenAI-compatible test server: delegation, a builtin, and the python command executor."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.support.llm_server import (
    FakeLLM,
    Reply,
    call,
    last_message,
    system_prompt,
    text,
    tool_calls,
    tool_results,
    turn,
)
from tests.support.seed import SEED_AS_PRINTED
from tests.support.services import sqlite_url_for, subprocess_env
from tests.test_cli import smallchain_executable

ASSISTANT = "your goal is to assist the human with their tasks"
OPERATOR = "you are a skilled calculator operator"


def fixed_seed(extra_tools: str = "") -> str:
    fixed = SEED_AS_PRINTED.replace('name: "gpt-4o\n', 'name: "gpt-4o"\n', 1)
    fixed = fixed.replace("      # - subtract\n", "      - subtract\n" + extra_tools, 1)
    assert "- subtract\n" in fixed and '"gpt-4o"' in fixed
    return fixed


def run_file(tmp_path: Path, llm: FakeLLM, manifest: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "smallchain.yaml"
    path.write_text(manifest)
    env = subprocess_env({
        "SMALLCHAIN_DATABASE_URL": sqlite_url_for(tmp_path),
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_API_KEY": "test-key",
    })
    return subprocess.run([smallchain_executable(), "run", "-f", str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def operator_reply(body: dict[str, Any]) -> Reply:
    if turn(body) == 1:
        return text(tool_results(body)[0])
    numbers = [int(n) for n in re.findall(r"\d+", last_message(body)["content"])]
    if "subtract" in last_message(body)["content"]:
        return tool_calls(call("subtract", {"a": numbers[1], "b": numbers[0]}))
    return tool_calls(call("add", {"a": numbers[0], "b": numbers[1]}))


def test_the_fixed_seed_example_runs_end_to_end(tmp_path: Path, fake_llm: FakeLLM) -> None:
    def script(body: dict[str, Any]) -> Reply:
        if system_prompt(body) == OPERATOR:
            return operator_reply(body)
        if turn(body) == 0:
            return tool_calls(call("calculator_operator", {"message": "add 3 and 4"}),
                              call("calculator_operator", {"message": "subtract 2 from 10"}))
        return text("results: " + ", ".join(tool_results(body)))

    fake_llm.script(script)
    result = run_file(tmp_path, fake_llm, fixed_seed())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "results: 7, 8" in result.stdout
    assert len(fake_llm.requests) == 6  # assistant 2, each operator 2
    # The seed's subtract tool is offered as written, and the seed's `gpt-4o` model and temperature are sent.
    operator_request = next(r for r in fake_llm.requests if system_prompt(r) == OPERATOR)
    subtract = next(t["function"] for t in operator_request["tools"] if t["function"]["name"] == "subtract")
    assert subtract["description"] == "subtract two numbers"
    assert operator_request["model"] == "gpt-4o" and operator_request["temperature"] == 0.0


def test_arguments_never_become_shell_text(tmp_path: Path, fake_llm: FakeLLM) -> None:
    marker = tmp_path / "pwned"
    hostile = f"it's \"quoted\" $(touch {marker}) `touch {marker}` ; touch {marker}"
    echo_tools = """
  - name: shout
    description: "echo a text"
    parameters: {type: object, properties: {text: {type: string}}, required: [text]}
    executor:
      python:
        command: python -c "print(text.upper())"
  - name: bash_echo
    description: "echo a text with bash"
    parameters: {type: object, properties: {text: {type: string}}, required: [text]}
    executor:
      bash:
        command: echo "$text"
"""
    manifest = fixed_seed("      - shout\n      - bash_echo\n").replace("\ntasks:", echo_tools + "\ntasks:", 1)

    def script(body: dict[str, Any]) -> Reply:
        if system_prompt(body) == OPERATOR:
            if turn(body) == 0:
                return tool_calls(call("shout", {"text": hostile}), call("bash_echo", {"text": hostile}))
            return text(json.dumps(tool_results(body)))
        if turn(body) == 0:
            return tool_calls(call("calculator_operator", {"message": "echo it"}))
        return text(tool_results(body)[0])

    fake_llm.script(script)
    result = run_file(tmp_path, fake_llm, manifest)

    assert result.returncode == 0, result.stdout + result.stderr
    assert not marker.exists()
    operator_final = json.loads(next(
        m["content"] for r in fake_llm.requests if system_prompt(r) == ASSISTANT and turn(r) == 1
        for m in r["messages"] if m["role"] == "tool"))
    assert operator_final == [hostile.upper(), hostile]
