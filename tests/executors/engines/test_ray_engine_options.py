"""A ``ray-engine``'s engine config (``options.engine``: the backend the actor runs, its
fields, its ``options:``) is checked when a run starts and by ``ponder validate``, like a
pool member's. Only ``engine`` being a mapping was checked: a typo in the engine's options
was found when the actor built the engine, at the step. No Ray cluster is needed: the
run is refused before any actor starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import ConfigError, Registry, Workflow
from orchestrator.graph.validate import validate_file
from orchestrator.store import StoreHook, open_store
from tests.fakes import Echo

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _ray_engine(engine: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"backend": "ray-engine", "options": {"engine": engine, "num_cpus": 0, **more}}


SIM_TYPO = {"backend": "sim-engine", "model": "llama-3-8b", "options": {"kv_blcks": 8}}


def test_the_engine_options_are_checked_at_their_path() -> None:
    problems = Registry.default().backend_option_problems(
        "ray-engine", _ray_engine(SIM_TYPO)["options"])
    assert [where for where, _ in problems] == [("engine", "options", "kv_blcks")]
    assert problems[0][1].startswith(
        "ray-engine backend options: engine: sim-engine backend options: unknown option "
        "'kv_blcks' (known: ")


@pytest.mark.parametrize(("engine", "where", "words"), [
    ({"backend": "sim-engine", "modle": "x"}, ("engine", "modle"),
     "ray-engine backend options: engine: modle: Extra inputs are not permitted"),
    ({"backend": "sim-engin"}, ("engine", "backend"),
     "ray-engine backend options: engine: unknown LLM backend 'sim-engin'; installed: "),
    ({"backend": "sim-engine", "options": {"kv_blocks": -1}},
     ("engine", "options", "kv_blocks"),
     "ray-engine backend options: engine: sim-engine backend options: kv_blocks: Input "
     "should be greater than or equal to 1 (got -1)"),
])
def test_each_engine_problem_is_named(engine: dict[str, Any], where: tuple[str, ...],
                                      words: str) -> None:
    [(found, message)] = Registry.default().backend_option_problems(
        "ray-engine", _ray_engine(engine)["options"])
    assert found == where
    assert message.startswith(words), message


def test_a_good_engine_and_the_ray_engines_own_problems() -> None:
    reg = Registry.default()
    assert reg.backend_option_problems("ray-engine", _ray_engine(
        {"backend": "sim-engine", "options": {"kv_blocks": 64}})["options"]) == []
    # the ray-engine's own options are still checked, and hide none of the engine's
    problems = reg.backend_option_problems("ray-engine", _ray_engine(
        SIM_TYPO, num_gpus=-1)["options"])
    assert [where for where, _ in problems] == [("num_gpus",),
                                                ("engine", "options", "kv_blcks")]


async def test_a_run_is_refused_before_anything_is_recorded(tmp_path: Path) -> None:
    wf = Workflow("t", models={"default": _ray_engine(SIM_TYPO)})
    wf.llm("a", "hi")
    async with await open_store(f"sqlite+aiosqlite:///{tmp_path}/t.db") as store:
        with pytest.raises(ConfigError) as caught:
            await wf.run(hooks=[StoreHook(store)])
        assert list(await store.list_runs()) == []
    message = str(caught.value)
    assert message.startswith(
        "model 'default': ray-engine backend options: engine: sim-engine backend options: "
        "unknown option 'kv_blcks'"), message
    assert "\n" not in message


async def test_a_pool_member_and_a_registered_engine_backend_are_checked() -> None:
    wf = Workflow("t", models={"default": {"backend": "pool", "options": {
        "shared": False, "members": [
            {**_ray_engine({"backend": "echo", "options": {"prefx": "x"}}), "name": "gpu0"},
        ]}}})
    wf.register_backend("echo", Echo)
    wf.llm("a", "hi")
    with pytest.raises(ConfigError) as caught:
        await wf.run()
    assert str(caught.value).startswith(
        "model 'default': pool backend options: member 'gpu0': ray-engine backend options: "
        "engine: echo backend options: unknown option 'prefx'"), str(caught.value)


def test_ponder_validate_reports_it_at_its_line(tmp_path: Path) -> None:
    file = tmp_path / "wf.yaml"
    file.write_text(
        "name: t\n"
        "models:\n"
        "  default:\n"
        "    backend: ray-engine\n"
        "    options:\n"
        "      engine:\n"
        "        backend: sim-engine\n"
        "        options:\n"
        "          kv_blcks: 8\n"
        "steps:\n"
        "  - {id: a, kind: llm, prompt: hi}\n")
    found = [(p.line, p.message) for p in validate_file(file)]
    assert len(found) == 1, found
    assert found[0][0] == 9
    assert "engine: sim-engine backend options: unknown option 'kv_blcks'" in found[0][1]
