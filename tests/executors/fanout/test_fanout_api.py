"""The package's public names, and the entry points that find its executors."""

from __future__ import annotations

import executors.fanout as fanout
from orchestrator.runtime.contracts import Executor
from orchestrator.runtime.registry import Registry


def test_public_names_are_pinned() -> None:
    assert sorted(fanout.__all__) == ["JoinExecutor", "SampleCall", "SampleExecutor",
                                      "SpawnExecutor"]
    for name in fanout.__all__:
        assert getattr(fanout, name).__module__.startswith("executors.fanout")


def test_the_registry_finds_the_executors_by_kind() -> None:
    registry = Registry.default()
    for kind, cls in (("spawn", fanout.SpawnExecutor), ("sample", fanout.SampleExecutor),
                      ("join", fanout.JoinExecutor)):
        executor = registry.executor(kind)
        assert isinstance(executor, cls) and isinstance(executor, Executor)
