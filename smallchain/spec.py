"""The resources a user declares: LLMs, tools, agents, tasks and runs (``smallchain.yaml``).

Reference checks (an agent naming an unknown llm, ...) are separate from field validation so
that each problem can carry its location in the file.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BUILTIN_TOOLS = ("add", "subtract", "multiply", "divide")
NAME_PATTERN = r"^[A-Za-z0-9_.\- ]+$"
# OpenAI restricts function names; a tool or delegated agent must fit to be offered to the LLM.
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``30``, ``30s``, ``5m``, ``2h``, ``2d`` or ``1w``."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration (examples: 30s, 5m, 2h, 2d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LLMSpec(_Spec):
    name: str = Field(pattern=NAME_PATTERN)
    provider: Literal["openai", "scripted"] = "openai"
    model: str | None = None
    base_url: str | None = None
    # The name of the environment variable holding the key; the key itself is never stored.
    api_key_env: str = "OPENAI_API_KEY"
    parameters: dict[str, Any] = Field(default_factory=dict)
    max_retries: int = Field(default=2, ge=0, le=10)
    timeout: float = Field(default=120.0, gt=0)
    # provider: scripted only; a deterministic stand-in for an LLM (see smallchain.llm.scripted).
    replies: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _model_required(self) -> LLMSpec:
        if self.provider == "openai" and not self.model:
            raise ValueError("an openai llm needs `model` (e.g. gpt-4o)")
        if self.provider == "scripted":
            # Imported here: the provider module imports this one.
            from smallchain.llm.scripted import parse_replies

            parse_replies(self.replies)
        return self


class CommandSpec(_Spec):
    command: str
    # Accepted for the seed's format; containers are not run yet, the command runs locally.
    image: str | None = None
    requirements: list[str] = Field(default_factory=list)
    timeout: float | None = Field(default=None, gt=0)


class WebhookSpec(_Spec):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)


class ExecutorSpec(_Spec):
    python: CommandSpec | None = None
    bash: CommandSpec | None = None
    node: CommandSpec | None = None
    webhook: WebhookSpec | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ExecutorSpec:
        chosen = [k for k in ("python", "bash", "node", "webhook") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError("an executor needs exactly one of: python, bash, node, webhook")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("python", "bash", "node", "webhook") if getattr(self, k) is not None)


class HumanSpec(_Spec):
    # Where the question is announced (JSON POST); without it, it is only listed by `get toolcalls --waiting`.
    notify_url: str | None = None


ToolKind = Literal["builtin", "function", "command", "webhook", "human", "agent"]


class ToolSpec(_Spec):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    builtin: str | None = None
    function: str | None = None
    executor: ExecutorSpec | None = None
    human: HumanSpec | None = None
    requires_approval: bool = False
    timeout: float | None = None
    # Filled in when an agent is offered as a tool to another agent.
    agent: str | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("builtin")
    @classmethod
    def _known_builtin(cls, value: str | None) -> str | None:
        if value is not None and value not in BUILTIN_TOOLS:
            raise ValueError(f"unknown builtin {value!r}; builtins are: {', '.join(BUILTIN_TOOLS)}")
        return value

    @model_validator(mode="after")
    def _exactly_one_implementation(self) -> ToolSpec:
        chosen = [k for k in ("builtin", "function", "executor", "human", "agent") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError(
                f"tool {self.name!r} needs exactly one of: builtin, function, executor, human"
                + (f" (it has {', '.join(chosen)})" if chosen else "")
            )
        return self

    @property
    def kind(self) -> ToolKind:
        if self.builtin:
            return "builtin"
        if self.function:
            return "function"
        if self.human:
            return "human"
        if self.agent:
            return "agent"
        assert self.executor is not None
        return "webhook" if self.executor.webhook else "command"


class Prompts(_Spec):
    """Every text the framework itself puts into a context window, each one overridable per agent."""

    tool_error: str = "Error: {error}"
    rejected: str = "Rejected: {reason}"
    timed_out: str = "Error: no result within {timeout}; the call timed out"
    cancelled: str = "Cancelled: the run was cancelled before this tool call completed"
    delegation_description: str = (
        "Delegate a task to the agent {agent}. Send it a message; its final answer is the result."
    )
    child_failed: str = "agent {agent} {status}: {error}"


class AgentRef(_Spec):
    agent: str


class AgentSpec(_Spec):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = None
    # Nothing is added to it: what is written here is the whole system message (empty: none is sent).
    system_prompt: str = ""
    llm: str | None = None
    tools: list[str | AgentRef] = Field(default_factory=list)
    max_steps: int | None = Field(default=None, ge=1)
    prompts: Prompts = Field(default_factory=Prompts)


class TaskSpec(_Spec):
    name: str = Field(pattern=NAME_PATTERN)
    agent: str
    user_message: str


class RunSpec(_Spec):
    name: str = Field(pattern=NAME_PATTERN)
    task: str


class Manifest(_Spec):
    llms: list[LLMSpec] = Field(default_factory=list)
    agents: list[AgentSpec] = Field(default_factory=list)
    tools: list[ToolSpec] = Field(default_factory=list)
    tasks: list[TaskSpec] = Field(default_factory=list)
    runs: list[RunSpec] = Field(default_factory=list)


class Problem(BaseModel):
    """One thing wrong in a manifest, with where it is (a path into the document)."""

    loc: tuple[str | int, ...]
    msg: str


def check_references(
    manifest: Manifest,
    known_llms: set[str] = frozenset(),  # type: ignore[assignment]
    known_agents: set[str] = frozenset(),  # type: ignore[assignment]
    known_tools: set[str] = frozenset(),  # type: ignore[assignment]
    known_tasks: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[Problem]:
    """Problems with names: duplicates and references to things that do not exist.

    ``known_*`` are names already applied earlier, so a file may refer to them.
    """
    problems: list[Problem] = []

    def unique(section: str, items: list[Any]) -> set[str]:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if item.name in seen:
                problems.append(
                    Problem(loc=(section, i, "name"),
                            msg=f"duplicate name {item.name!r} in {section} (first at {section}[{seen[item.name]}])")
                )
            seen.setdefault(item.name, i)
        return set(seen)

    llms = unique("llms", manifest.llms) | set(known_llms)
    agents = unique("agents", manifest.agents) | set(known_agents)
    tools = unique("tools", manifest.tools) | set(known_tools) | set(BUILTIN_TOOLS)
    tasks = unique("tasks", manifest.tasks) | set(known_tasks)
    unique("runs", manifest.runs)

    for i, agent in enumerate(manifest.agents):
        if agent.llm is None:
            if len(llms) != 1:
                problems.append(Problem(
                    loc=("agents", i, "llm"),
                    msg=f"agent {agent.name!r} names no llm and there are {len(llms)} llms to choose from; set `llm:`",
                ))
        elif agent.llm not in llms:
            problems.append(Problem(loc=("agents", i, "llm"),
                                    msg=f"agent {agent.name!r} uses llm {agent.llm!r}, which is not defined"))
        offered: set[str] = set()
        for j, ref in enumerate(agent.tools):
            name = ref.agent if isinstance(ref, AgentRef) else ref
            if isinstance(ref, AgentRef):
                if ref.agent not in agents:
                    problems.append(Problem(
                        loc=("agents", i, "tools", j, "agent"),
                        msg=f"agent {agent.name!r} delegates to agent {ref.agent!r}, which is not defined",
                    ))
                elif ref.agent == agent.name:
                    problems.append(Problem(loc=("agents", i, "tools", j, "agent"),
                                            msg=f"agent {agent.name!r} cannot delegate to itself"))
            elif ref not in tools:
                problems.append(Problem(loc=("agents", i, "tools", j),
                                        msg=f"agent {agent.name!r} uses tool {ref!r}, which is not defined"))
            if name in offered:
                problems.append(Problem(loc=("agents", i, "tools", j),
                                        msg=f"agent {agent.name!r} lists {name!r} twice"))
            offered.add(name)

    for i, task in enumerate(manifest.tasks):
        if task.agent not in agents:
            problems.append(Problem(loc=("tasks", i, "agent"),
                                    msg=f"task {task.name!r} uses agent {task.agent!r}, which is not defined"))
    for i, run in enumerate(manifest.runs):
        if run.task not in tasks:
            problems.append(Problem(loc=("runs", i, "task"),
                                    msg=f"run {run.name!r} uses task {run.task!r}, which is not defined"))
    return problems
