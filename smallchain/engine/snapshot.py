"""An agent resolved for a run: its llm, prompt, tools and the exact tool definitions sent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from smallchain.spec import BUILTIN_TOOLS, AgentRef, AgentSpec, LLMSpec, Prompts, ToolSpec
from smallchain.store.schema import Resource
from smallchain.tools import tool_definition


class ResolveError(ValueError):
    """A run cannot start: its agent, llm or a tool is not defined."""


class AgentSnapshot(BaseModel):
    name: str
    system_prompt: str
    llm: LLMSpec
    tools: list[ToolSpec]
    tool_definitions: list[dict[str, Any]]
    max_steps: int | None = None
    prompts: Prompts = Prompts()

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)


def _resource(session: Session, kind: str, name: str) -> dict[str, Any] | None:
    row = session.get(Resource, (kind, name))
    return None if row is None else row.spec


def resolve_agent(session: Session, name: str) -> AgentSnapshot:
    spec_data = _resource(session, "agent", name)
    if spec_data is None:
        raise ResolveError(f"agent {name!r} is not defined (apply a file that defines it)")
    agent = AgentSpec.model_validate(spec_data)
    if agent.llm is not None:
        llm_data = _resource(session, "llm", agent.llm)
        if llm_data is None:
            raise ResolveError(f"agent {name!r} uses llm {agent.llm!r}, which is not defined")
    else:
        llms = session.scalars(select(Resource.spec).where(Resource.kind == "llm")).all()
        if len(llms) != 1:
            raise ResolveError(f"agent {name!r} names no llm and {len(llms)} llms are defined; set `llm:`")
        llm_data = llms[0]
    tools: list[ToolSpec] = []
    for ref in agent.tools:
        if isinstance(ref, AgentRef):
            sub = _resource(session, "agent", ref.agent)
            if sub is None:
                raise ResolveError(f"agent {name!r} delegates to agent {ref.agent!r}, which is not defined")
            description = sub.get("description") or agent.prompts.delegation_description.format(agent=ref.agent)
            tools.append(ToolSpec(name=ref.agent, description=description, agent=ref.agent))
            continue
        tool_data = _resource(session, "tool", ref)
        if tool_data is None:
            if ref not in BUILTIN_TOOLS:
                raise ResolveError(f"agent {name!r} uses tool {ref!r}, which is not defined")
            tool_data = {"name": ref, "builtin": ref}
        tools.append(ToolSpec.model_validate(tool_data))
    try:
        definitions = [tool_definition(t) for t in tools]
    except ValueError as exc:
        raise ResolveError(f"agent {name!r}: {exc}") from exc
    return AgentSnapshot(
        name=agent.name,
        system_prompt=agent.system_prompt,
        llm=LLMSpec.model_validate(llm_data),
        tools=tools,
        tool_definitions=definitions,
        max_steps=agent.max_steps,
        prompts=agent.prompts,
    )
