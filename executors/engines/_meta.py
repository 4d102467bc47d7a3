"""Attach engine details to an :class:`LLMResponse` where the contract has room for them.

The engines record, per call, which engine served it, the pool's policy and priority,
queueing and decode times, in ``LLMResponse.meta``, which the LLM executor merges into
the step's ``Result.meta`` (and so into the trace). Against a contract without the
field the details are dropped here and only the engines' own stats keep them.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from orchestrator.runtime.contracts import LLMResponse

HAS_META = "meta" in {f.name for f in fields(LLMResponse)}


def with_meta(response: LLMResponse, meta: dict[str, Any]) -> LLMResponse:
    """``response`` with ``meta`` merged into its ``meta`` (unchanged without the field)."""
    if not HAS_META:
        return response
    merged = {**getattr(response, "meta", {}), **{k: v for k, v in meta.items() if v is not None}}
    return replace(response, meta=merged)


def meta_of(response: LLMResponse) -> dict[str, Any]:
    """The response's ``meta`` (empty without the field)."""
    value = getattr(response, "meta", None)
    return dict(value) if isinstance(value, dict) else {}
