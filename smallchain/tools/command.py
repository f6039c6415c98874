"""Tools that run a local command: ``executor: {python | bash | node: {command: ...}}``.

The call's arguments are never put into command text, so nothing the LLM writes can be
parsed by a shell. They reach the program as data instead:

* JSON on stdin, and the same JSON in ``SMALLCHAIN_ARGUMENTS``;
* each argument whose name is an identifier as an environment variable (strings raw, other
  values JSON), so a bash script can say ``$a``;
* python: as builtins, so ``python -c "print(a - b)"`` works (a ``sitecustomize`` on PYTHONPATH);
* node: as globals, so ``node -e "console.log(a - b)"`` works (``NODE_OPTIONS=--require``).

python and node commands are split with shlex and run without a shell. A bash command is a
bash script, run as ``bash -c <command>``: the script text comes from the manifest, never from
the LLM, whose arguments it reads from the environment.

``image`` and ``requirements`` are accepted but not acted on: no container is started and
nothing is installed; the command runs locally, with what the worker has installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from smallchain.spec import CommandSpec, ToolSpec
from smallchain.tools.base import ToolContext, ToolError

STDERR_TAIL = 2000

# Runs before the tool's own code in every python started for the call. Names that already
# exist as builtins are skipped so an argument called `print` cannot break the program.
_SITECUSTOMIZE = """\
import builtins, json, keyword, os

for _name, _value in json.loads(os.environ.get("SMALLCHAIN_ARGUMENTS") or "{}").items():
    if _name.isidentifier() and not keyword.iskeyword(_name) and not hasattr(builtins, _name):
        setattr(builtins, _name, _value)
"""

# `name in globalThis` also covers `__proto__`, `constructor`, `process`, `require`, ...
_NODE_PRELOAD = """\
const args = JSON.parse(process.env.SMALLCHAIN_ARGUMENTS || "{}");
for (const [name, value] of Object.entries(args)) {
  if (/^[A-Za-z_$][\\w$]*$/.test(name) && !(name in globalThis)) globalThis[name] = value;
}
"""

# Argument names are chosen by the LLM; these variables change how programs start (LD_PRELOAD,
# BASH_ENV, PYTHONPATH, proxies, ...), so an argument is never exported under such a name.
_UNSAFE_ENV = re.compile(
    r"^(LD_|DYLD_|PYTHON|NODE_|BASH|SMALLCHAIN_|GCONV|MALLOC|PERL|RUBY|GIT_|SSL_|LC_)"
    r"|^(ENV|PATH|IFS|PS4|CDPATH|GLOBIGNORE|SHELLOPTS|HOME|TMPDIR|SHELL|LANG|LOCPATH|NLSPATH|HOSTALIASES)$"
    r"|_PROXY$",
    re.IGNORECASE,
)


class CommandExecutor:
    def execute(self, tool: ToolSpec, arguments: dict[str, Any], context: ToolContext) -> str:
        assert tool.executor is not None
        kind = tool.executor.kind
        spec = getattr(tool.executor, kind)
        if not isinstance(spec, CommandSpec):
            raise ToolError(f"tool {tool.name!r}: executor {kind!r} is not a command")
        timeout = spec.timeout or context.timeout
        payload = json.dumps(arguments)
        with tempfile.TemporaryDirectory(prefix="smallchain-tool-") as scratch:
            argv = _argv(kind, spec.command, tool.name)
            env = _environment(kind, arguments, payload, context, Path(scratch))
            return _run(argv, env, payload, timeout)


def _argv(kind: str, command: str, tool_name: str) -> list[str]:
    if kind == "bash":
        # $0 names the tool in bash's own error messages.
        return ["bash", "-c", command, tool_name]
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ToolError(f"cannot parse command {command!r}: {exc}") from exc
    if not argv:
        raise ToolError("the tool's command is empty")
    if kind == "python" and argv[0] in ("python", "python3"):
        # The worker's interpreter, so the sitecustomize is honoured and packages match.
        argv[0] = sys.executable
    return argv


def _environment(
    kind: str, arguments: dict[str, Any], payload: str, context: ToolContext, scratch: Path
) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in arguments.items():
        text = value if isinstance(value, str) else json.dumps(value)
        # A NUL cannot be in an environment variable; such a value is still in SMALLCHAIN_ARGUMENTS.
        if name.isidentifier() and name not in env and not _UNSAFE_ENV.search(name) and "\0" not in text:
            env[name] = text
    env["SMALLCHAIN_ARGUMENTS"] = payload
    env["SMALLCHAIN_RUN_ID"] = context.run_id
    env["SMALLCHAIN_CALL_ID"] = context.call_id
    if kind == "python":
        # Shadows any other sitecustomize; tool commands are short scripts that do not need one.
        (scratch / "sitecustomize.py").write_text(_SITECUSTOMIZE)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(scratch), env.get("PYTHONPATH")) if p)
    elif kind == "node":
        preload = scratch / "smallchain-arguments.js"
        preload.write_text(_NODE_PRELOAD)
        env["NODE_OPTIONS"] = " ".join(
            p for p in (env.get("NODE_OPTIONS"), f"--require {json.dumps(str(preload))}") if p
        )
    return env


def _run(argv: list[str], env: dict[str, str], stdin: str, timeout: float) -> str:
    try:
        # A session of its own, so a timeout kills the whole group, grandchildren included.
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", errors="replace", start_new_session=True,
        )
    except OSError as exc:
        raise ToolError(f"cannot start {argv[0]!r}: {exc}") from exc
    try:
        stdout, stderr = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=5)
        raise ToolError(f"command timed out after {timeout:g}s") from None
    except BaseException:
        # e.g. the worker's own time limit: the command must not outlive the call.
        _kill_group(proc)
        raise
    # Whatever the command left running in the background goes with it.
    _kill_group(proc)
    if proc.returncode != 0:
        how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with code {proc.returncode}")
        detail = (stderr.strip() or stdout.strip())[-STDERR_TAIL:]
        raise ToolError(f"command {how}" + (f": {detail}" if detail else " and printed nothing"))
    return stdout.removesuffix("\n")


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
