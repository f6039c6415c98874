"""What a step asks to happen after its transaction commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

StepName = Literal["llm_turn", "execute_tool", "start_child", "deliver_result", "notify"]

QUEUE_OF: dict[StepName, str] = {
    "llm_turn": "llm",
    "execute_tool": "tools",
    "start_child": "delegation",
    "deliver_result": "delegation",
    "notify": "tools",
}


@dataclass(frozen=True)
class Next:
    """A successor step. Only ids cross the broker; every step re-reads its state."""

    step: StepName
    args: tuple[str | int, ...]

    @property
    def queue(self) -> str:
        return QUEUE_OF[self.step]


class Dispatcher(Protocol):
    def dispatch(self, steps: Sequence[Next]) -> None: ...
