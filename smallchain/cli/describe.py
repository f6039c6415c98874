"""``smallchain describe run``: one run, as data (for -o json|yaml) and as text.

The context window is printed from the messages table, which holds exactly what the LLM was
sent, in order; nothing is reconstructed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from smallchain.cli import queries
from smallchain.cli.output import NONE, duration_ms, human_duration, iso, one_line

if TYPE_CHECKING:
    from smallchain.api import Smallchain

INDENT = "    "


def describe_data(sc: Smallchain, run_id: str) -> dict[str, Any]:
    handle = sc.get_run(run_id)
    family = queries.subtree(sc.db, run_id)
    run = family[0]
    snapshot = run.agent or {}
    llm = snapshot.get("llm") or {}
    own_calls = handle.llm_calls
    tree_calls = queries.llm_calls(sc.db, [r.id for r in family])

    def tree(node_id: str) -> list[dict[str, Any]]:
        return [{**queries.run_view(r), "children": tree(r.id)} for r in family if r.parent_run_id == node_id]

    latencies = [c["latency_ms"] for c in own_calls]
    return {
        "run": queries.run_view(run),
        "llm": {"name": llm.get("name"), "provider": llm.get("provider"), "model": llm.get("model")},
        "tools": [t.get("function", {}).get("name") for t in snapshot.get("tool_definitions", [])],
        "duration_ms": duration_ms(run.created_at, run.finished_at),
        "messages": handle.messages,
        "tool_calls": [queries.tool_call_view(c) for c, _ in sorted(
            queries.tool_calls(sc.db, {run.id}), key=lambda pair: (pair[0].step, pair[0].ordinal))],
        "children": tree(run.id),
        "tokens": {
            "run": {"prompt": run.prompt_tokens, "completion": run.completion_tokens},
            "tree": {"prompt": sum(r.prompt_tokens for r in family),
                     "completion": sum(r.completion_tokens for r in family), "runs": len(family)},
        },
        "llm_calls": {
            "count": len(own_calls),
            "tree_count": len(tree_calls),
            "latency_ms": {"total": sum(latencies), "mean": sum(latencies) // len(latencies) if latencies else 0,
                           "max": max(latencies, default=0)},
            "calls": [
                {"step": c["step"], "model": c["model"], "prompt_tokens": c["prompt_tokens"],
                 "completion_tokens": c["completion_tokens"], "latency_ms": c["latency_ms"], "error": c["error"],
                 "created_at": iso(c["created_at"])}
                for c in own_calls
            ],
        },
    }


def _block(text: str | None, indent: str) -> list[str]:
    if text is None or text == "":
        return [f"{indent}(empty)"]
    return [f"{indent}{line}" for line in str(text).splitlines()]


def _field(label: str, value: Any) -> list[str]:
    text = NONE if value is None or value == "" else str(value)
    lines = text.splitlines() or [""]
    out = [f"{label + ':':<14}{lines[0]}"]
    out += [f"{'':<14}{line}" for line in lines[1:]]
    return out


def _message_lines(i: int, message: dict[str, Any]) -> list[str]:
    role = message.get("role", "?")
    head = f"  [{i}] {role}"
    if role == "tool":
        head += f" (answer to {message.get('tool_call_id')})"
    lines = [head]
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content or not message.get("tool_calls"):
        lines += _block(content, "      ")
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        lines.append(f"      -> tool call {call.get('id')}: {function.get('name')}({function.get('arguments')})")
    return lines


def _tree_lines(nodes: list[dict[str, Any]], prefix: str) -> list[str]:
    lines = []
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        outcome = node["output"] if node["status"] == "Succeeded" else node["error"]
        label = node["name"] or node["id"][:8]
        lines.append(f"{prefix}{'└─ ' if last else '├─ '}{label}  {node['agent']}  {node['status']}: "
                     f"{one_line(outcome, 80)}")
        lines += _tree_lines(node["children"], prefix + ("   " if last else "│  "))
    return lines


def render_describe(data: dict[str, Any]) -> str:
    run = data["run"]
    llm = data["llm"]
    tokens = data["tokens"]
    calls = data["llm_calls"]
    lines: list[str] = []
    lines += _field("Name", run["name"])
    lines += _field("ID", run["id"])
    lines += _field("Status", run["status"])
    lines += _field("Task", run["task"])
    lines += _field("Agent", run["agent"])
    lines += _field("LLM", f"{llm['name']} (provider {llm['provider']}, model {llm['model'] or NONE})")
    lines += _field("Tools", ", ".join(data["tools"]) or None)
    lines += _field("Depth", run["depth"])
    lines += _field("Parent", run["parent_id"])
    lines += _field("Created", run["created_at"])
    finished = run["finished_at"]
    if finished:
        finished += f" (took {human_duration(data['duration_ms'])})"
    lines += _field("Finished", finished)
    lines += _field("Output", run["output"])
    lines += _field("Error", run["error"])
    tree = tokens["tree"]
    token_text = f"{tokens['run']['prompt']} prompt + {tokens['run']['completion']} completion (this run)"
    if tree["runs"] > 1:
        token_text += (f"; {tree['prompt']} prompt + {tree['completion']} completion "
                       f"(with {tree['runs'] - 1} child run{'s' if tree['runs'] != 2 else ''})")
    lines += _field("Tokens", token_text)
    latency = calls["latency_ms"]
    call_text = (f"{calls['count']} (latency total {human_duration(latency['total'])}, "
                 f"mean {human_duration(latency['mean'])}, max {human_duration(latency['max'])})")
    if calls["tree_count"] != calls["count"]:
        call_text += f"; {calls['tree_count']} with child runs"
    lines += _field("LLM calls", call_text)

    messages = data["messages"]
    lines += ["", f"Context window ({len(messages)} message{'s' if len(messages) != 1 else ''}):"]
    for i, message in enumerate(messages):
        lines += _message_lines(i, message)

    tool_calls = data["tool_calls"]
    lines += ["", f"Tool calls ({len(tool_calls)}):" if tool_calls else "Tool calls: none"]
    for call in tool_calls:
        lines.append(f"  {call['name']}  {call['status']}  (turn {call['step']}, #{call['ordinal']}, "
                     f"{human_duration(call['duration_ms'])})")
        lines.append(f"{INDENT}  id:         {call['id']}")
        arguments = call["arguments"]
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        lines.append(f"{INDENT}  arguments:  {one_line(arguments, 200)}")
        if call["result"] is not None:
            lines.append(f"{INDENT}  result:     {one_line(call['result'], 200)}")
        if call["error"] is not None:
            lines.append(f"{INDENT}  error:      {one_line(call['error'], 200)}")
        if call["child_run_id"]:
            child = _find(data["children"], call["child_run_id"])
            status = f" ({child['status']})" if child else ""
            lines.append(f"{INDENT}  child run:  {call['child_run_id']}{status}")
        if call["attempts"] > 1:
            lines.append(f"{INDENT}  attempts:   {call['attempts']}")

    children = data["children"]
    lines += [""]
    if children:
        lines.append("Child runs:")
        label = run["name"] or run["id"][:8]
        lines.append(f"  {label}  {run['agent']}  {run['status']}")
        lines += _tree_lines(children, "  ")
    else:
        lines.append("Child runs: none")

    lines += ["", f"LLM calls ({calls['count']}):" if calls["count"] else "LLM calls: none"]
    for call in calls["calls"]:
        text = (f"  turn {call['step']}  model {call['model'] or NONE}  {call['prompt_tokens']} prompt + "
                f"{call['completion_tokens']} completion tokens  {human_duration(call['latency_ms'])}")
        if call["error"]:
            text += f"  error: {one_line(call['error'], 120)}"
        lines.append(text)
    return "\n".join(lines)


def _find(nodes: list[dict[str, Any]], run_id: str) -> dict[str, Any] | None:
    for node in nodes:
        if node["id"] == run_id:
            return node
        found = _find(node["children"], run_id)
        if found is not None:
            return found
    return None
