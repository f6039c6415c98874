"""``${VAR}`` references, expanded only where a value is used, so secrets are never stored."""

from __future__ import annotations

import os
import re
from typing import Any

_ENV_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: Any) -> Any:
    """``value`` with each ``${VAR}`` in its strings (also inside dicts and lists) replaced by
    the environment variable; ``$${`` stands for a literal ``${``.
    """
    if isinstance(value, str):
        return _ENV_REFERENCE.sub(_env_value, value)
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


def _env_value(match: re.Match[str]) -> str:
    name = match.group(1)
    if name is None:
        return "${"
    if name not in os.environ:
        raise ValueError(f"environment variable {name} is not set (referenced as ${{{name}}})")
    return os.environ[name]
