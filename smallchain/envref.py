"""``${VAR}`` references, expanded only where a value is used, so secrets are never stored."""

from __future__ import annotations

import os
import re
from typing import Any

_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: Any) -> Any:
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1)
            if name not in os.environ:
                raise ValueError(f"environment variable {name} is not set (referenced as ${{{name}}})")
            return os.environ[name]
        return _REF.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value
