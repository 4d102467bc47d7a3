"""Workflows and helpers shared by the chaos tests (imported as `chaos.support`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from orchestrator import Workflow


def shout(text: str) -> str:
    """Upper-case a text (a plain sync tool, wrapped in chaos by the tests)."""
    return text.upper()


# Tools, LLM calls, a map and a dependency chain: every executor path the scheduler has.
MIXED: dict[str, Any] = {
    "name": "chaos_mix",
    "inputs": {"question": {"type": "string"}},
    "models": {"default": {"backend": "chaos", "options": {"time_scale": 0.0, "seed": 3}}},
    "defaults": {"retry": {"max_attempts": 60, "initial_backoff_s": 0.0002,
                           "max_backoff_s": 0.001, "jitter": 0.0}},
    "steps": [
        {"id": "a", "kind": "tool", "tool": "calc", "args": {"expression": "1 + 2"}},
        {"id": "b", "kind": "tool", "tool": "calc",
         "args": {"expression": "${steps.a.output} * 10"}},
        {"id": "ask", "kind": "llm", "max_tokens": 8,
         "prompt": "Q: {{ inputs.question }} / {{ steps.b.output }}"},
        # a spike (50 ms) outlasts this timeout: the scheduler's own timeout fires
        {"id": "ask2", "kind": "llm", "max_tokens": 8, "timeout_s": 0.02,
         "prompt": "Other: {{ inputs.question }}"},
        {"id": "shouted", "kind": "tool", "tool": "shout", "args": {"text": "${steps.ask.output}"}},
        {"id": "m", "kind": "map", "over": [1, 2, 3, 4, 5, 6],
         "step": {"kind": "tool", "tool": "calc", "args": {"expression": "${item} * 2"}}},
        {"id": "total", "kind": "tool", "tool": "calc",
         "args": {"expression": "${steps.b.output} + 1"}, "after": ["m"]},
        {"id": "last", "kind": "llm", "max_tokens": 8,
         "prompt": "{{ steps.shouted.output }} {{ steps.ask2.output }} {{ steps.total.output }}"},
    ],
    "outputs": {"last": "${steps.last.output}", "m": "${steps.m.output}",
                "total": "${steps.total.output}", "shouted": "${steps.shouted.output}"},
}

INPUTS = {"question": "why is the sky blue?"}


def layered(n: int = 24) -> dict[str, Any]:
    """`n` calc steps in layers of four; each depends on one or two of the layer before."""
    steps: list[dict[str, Any]] = []
    for i in range(n):
        layer, pos = divmod(i, 4)
        if layer == 0:
            expr = f"{i} + 1"
        else:
            deps = sorted({(layer - 1) * 4 + pos, (layer - 1) * 4 + (pos + 1 + i) % 4})
            expr = " + ".join(f"${{steps.s{d}.output}}" for d in deps) + f" + {i}"
        steps.append({"id": f"s{i}", "kind": "tool", "tool": "calc",
                      "args": {"expression": expr}})
    return {"name": "layered", "steps": steps,
            "defaults": {"retry": {"max_attempts": 60, "initial_backoff_s": 0.0002,
                                   "max_backoff_s": 0.001, "jitter": 0.0}}}


def workflow(doc: dict[str, Any]) -> Workflow:
    return Workflow.from_yaml_text(yaml.safe_dump(doc, sort_keys=False))


def step_deps(doc: dict[str, Any]) -> dict[str, set[str]]:
    """Each step's direct dependencies (from `${steps.X...}` references and `after`)."""
    from orchestrator.spec.refs import step_deps as refs_of

    return {s["id"]: refs_of(s) | set(s.get("after", [])) for s in doc["steps"]}


def downstream(deps: dict[str, set[str]], roots: Sequence[str]) -> set[str]:
    """Every step that depends, directly or not, on one of `roots` (roots excluded)."""
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        for sid, ds in deps.items():
            if sid not in out and ds & (out | set(roots)):
                out.add(sid)
                changed = True
    return out
