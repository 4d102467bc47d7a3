"""Fixtures of the engine tests: a virtual clock, requests, sim-engine configs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from executors.engines import VirtualClockLoop
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Engine tests run on asyncio with a virtual clock: engine time costs no wall time."""
    return "asyncio", {"loop_factory": VirtualClockLoop}


def _ask(prompt: str, **fields: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": prompt}], **fields)


def _sim_config(**options: Any) -> ModelConfig:
    return ModelConfig(backend="sim-engine", model="llama-3-8b", options=options)


def _pool_config(members: list[dict[str, Any]], **options: Any) -> ModelConfig:
    return ModelConfig(backend="pool", model="pooled",
                       options={"members": members, "shared": False, **options})


@pytest.fixture
def ask() -> Callable[..., LLMRequest]:
    """``ask(prompt, **fields)``: a one-message request."""
    return _ask


@pytest.fixture
def sim_config() -> Callable[..., ModelConfig]:
    """``sim_config(**options)``: a ``sim-engine`` model config."""
    return _sim_config


@pytest.fixture
def pool_config() -> Callable[..., ModelConfig]:
    """``pool_config(members, **options)``: a ``pool`` config, not shared across tests."""
    return _pool_config
