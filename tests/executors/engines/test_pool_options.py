"""``ponder validate`` checks a pool's members as far as the workflow file shows them
(``replicas``, fields, backend, options, names used twice), each at its line, in the words
a run that builds the pool uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from executors.engines.pool import PoolBackend
from orchestrator.errors import ConfigError
from orchestrator.graph.validate import validate_file
from orchestrator.runtime.registry import Registry
from orchestrator.spec.models import ModelConfig

MEMBERS: list[dict[str, Any]] = [
    {"backend": "sim-engine", "name": "a"},                       # line 8
    {"backend": "sim-engine", "name": "a"},                       # line 9: a second 'a'
    {"backend": "sim-engine", "replicas": 0},
    {"backend": "sim-engin"},
    {"backend": "sim-engine", "colour": "red"},
    {"backend": "sim-engine", "name": "b", "options": {"kv_blocks": -1}},
]


def _workflow(tmp_path: Path, members: list[dict[str, Any]]) -> Path:
    file = tmp_path / "pool.yaml"
    file.write_text("name: p\nmodels:\n  default:\n    backend: pool\n    options:\n"
                    "      members:\n"
                    + "".join(f"        - {yaml.safe_dump(m, default_flow_style=True)}"
                              for m in members)
                    + "steps:\n  - {id: a, kind: llm, prompt: hi}\n")
    return file


def test_every_member_problem_is_at_its_line(tmp_path: Path) -> None:
    file = _workflow(tmp_path, MEMBERS)
    found = [(p.line, p.message.removeprefix("model 'default': pool backend options: "))
             for p in validate_file(file)]
    assert found == [
        (8, "member names must be unique: ['a', 'a', 'sim-engin-3', 'b']"),
        (9, "member 2: replicas must be a positive integer, not 0"),
        (10, "member 3: unknown LLM backend 'sim-engin'; installed: "
             + ", ".join(sorted(Registry.default().backend_names()))),
        (11, "member 4: colour: Extra inputs are not permitted"),
        (12, "member 'b': sim-engine backend options: kv_blocks: Input should be greater "
             "than or equal to 1 (got -1)"),
    ]


@pytest.mark.parametrize("index", range(1, len(MEMBERS)))
def test_a_run_refuses_each_in_the_same_words(tmp_path: Path, index: int) -> None:
    members = [MEMBERS[0], MEMBERS[index]]
    [problem] = validate_file(_workflow(tmp_path, members))
    words = problem.message.removeprefix("model 'default': pool backend options: ")
    with pytest.raises(ConfigError) as info:
        PoolBackend(ModelConfig(backend="pool", options={"members": members,
                                                         "shared": False}))
    assert str(info.value).endswith(words)


def test_a_good_pool_has_no_problems(tmp_path: Path) -> None:
    members = [{"backend": "sim-engine", "name": "x", "replicas": 2},
               {"backend": "sim-engine", "options": {"kv_blocks": 64}}]
    assert validate_file(_workflow(tmp_path, members)) == []


def test_a_bad_pool_option_does_not_hide_its_members_problems(tmp_path: Path) -> None:
    file = tmp_path / "pool.yaml"
    file.write_text("name: p\nmodels:\n  default:\n    backend: pool\n    options:\n"
                    "      policy: fifoo\n"
                    "      members:\n"
                    "        - {backend: sim-engin}\n"
                    "steps:\n  - {id: a, kind: llm, prompt: hi}\n")
    found = [(p.line, p.message.removeprefix("model 'default': pool backend options: "))
             for p in validate_file(file)]
    assert [line for line, _ in found] == [6, 8]
    assert found[0][1].startswith("policy: Input should be 'fifo'")
    assert found[1][1].startswith("member 0: unknown LLM backend 'sim-engin'")
