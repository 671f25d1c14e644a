"""Render results as Markdown (docs/benchmarks.md)."""

from __future__ import annotations

import json
from typing import Any


def render(everything: dict[str, Any]) -> str:
    return json.dumps(everything, indent=1)
