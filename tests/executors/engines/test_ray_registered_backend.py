"""A ``ray-engine`` whose engine's backend is registered on the workflow only
(``Workflow.register_backend``). The actor built its engine with the installed backends
only, so such an engine was an "unknown LLM backend" in every actor. Now the registry
that serves the ``ray-engine`` (bound through ``with_registry``) gives the factory, which
travels to the actor's process by its import path; one that process cannot import (a
lambda, a class defined inside a function) refuses the run before it starts, naming
the backend and why.

The test with a Ray cluster starts a local one (CPU only) and is marked ``slow``; the
others run the actor's body in this process, as the actor's Ray handle would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from executors.engines import RayEngineBackend, connect_ray
from executors.engines.ray import EngineActor
from orchestrator import ConfigError, Registry, Workflow
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig
from orchestrator.store import StoreHook, open_store
from tests.fakes import Echo

pytestmark = pytest.mark.anyio

HI = LLMRequest(messages=[{"role": "user", "content": "hi"}])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Ray answers from its own threads


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="needs the `ray` extra")
    started = not ray.is_initialized()
    if started:
        connect_ray(None, num_cpus=2, include_dashboard=False)
    yield ray
    if started:
        ray.shutdown()


def _engine(backend: str = "echo") -> dict[str, Any]:
    return {"backend": "ray-engine", "options": {
        "engine": {"backend": backend, "model": "m1"}, "num_cpus": 0}}


def _workflow(factory: Any, *, pooled: bool = True) -> Workflow:
    model = ({"backend": "pool", "options": {"shared": False, "members": [
        {**_engine(), "name": "actor"}]}} if pooled else _engine())
    wf = Workflow("t", models={"default": model})
    wf.register_backend("echo", factory)
    wf.llm("a", "hi")
    return wf


@pytest.mark.slow
async def test_a_registered_backend_runs_in_the_actor(ray_local: Any) -> None:
    result = await _workflow(Echo).run()
    assert result.ok, result.error
    assert result.output == "echo m1"


async def test_the_actor_builds_the_factory_from_its_import_path() -> None:
    reg = Registry.default()
    reg.backends["echo"] = Echo
    bound = reg.backend_factory("ray-engine")
    assert issubclass(bound, RayEngineBackend) and bound is not RayEngineBackend
    backend = bound(ModelConfig.model_validate(_engine()))
    path = backend._factory_path
    assert path == "tests.fakes:Echo"
    body = EngineActor(backend.engine_config.model_dump_json(), path)
    assert await body.ready() is None
    status, response = await body.complete(HI)
    assert status == "ok" and response.text == "echo m1"
    # unbound (a fresh registry), the actor builds the installed backends only, as before
    assert RayEngineBackend(ModelConfig.model_validate(_engine()))._factory_path is None
    plain = EngineActor(backend.engine_config.model_dump_json())
    assert (await plain.ready() or ("", ""))[1].startswith("unknown LLM backend 'echo'")


async def test_a_path_the_worker_cannot_import_fails_the_start_in_one_line() -> None:
    body = EngineActor(ModelConfig(backend="echo").model_dump_json(), "no_such_mod:Echo")
    error = await body.ready()
    assert error is not None
    assert error[:2] == ("ConfigError", "the backend 'echo' (no_such_mod:Echo) does not "
                         "import on the Ray worker: ModuleNotFoundError: No module named "
                         "'no_such_mod'")


@pytest.mark.parametrize("pooled", [True, False])
async def test_a_factory_the_worker_cannot_import_refuses_the_run(
        pooled: bool, tmp_path: Any) -> None:
    class Local(Echo):
        pass

    for factory, why in ((Local, "it is defined inside a function"),
                         (lambda config: Echo(config), "it is a lambda")):
        async with await open_store(f"sqlite+aiosqlite:///{tmp_path}/t.db") as store:
            with pytest.raises(ConfigError) as caught:
                await _workflow(factory, pooled=pooled).run(hooks=[StoreHook(store)])
            assert list(await store.list_runs()) == []
        message = str(caught.value)
        assert ("ray-engine: the engine's backend 'echo' is served by "
                f"{__name__}.") in message
        assert f"which the Ray actor's process cannot import: {why}" in message
        assert "define it at the top level of a module the Ray workers can import" in message
        assert message.startswith("pool member 'actor': ray-engine" if pooled
                                  else "ray-engine: ")
        assert "\n" not in message and "Traceback" not in message


def test_building_it_directly_fails_the_same_way() -> None:
    reg = Registry.default()
    reg.backends["echo"] = lambda config: Echo(config)
    with pytest.raises(ConfigError) as caught:
        reg.backend_factory("ray-engine")(ModelConfig.model_validate(_engine()))
    assert str(caught.value) == (
        "ray-engine: the engine's backend 'echo' is served by "
        f"{__name__}.test_building_it_directly_fails_the_same_way.<locals>.<lambda>, which "
        "the Ray actor's process cannot import: it is a lambda")



def test_a_backend_an_editable_install_provides_is_importable(tmp_path: Any,
                                                              monkeypatch: Any) -> None:
    """`pip install -e .` puts Ponder on no folder of sys.path: a finder of
    sys.meta_path finds it. Only sys.path was searched, so every built-in backend
    (`sim-engine`, `openai`) was refused as one "the Ray actor's process cannot import"
    when ponder ran outside the checkout."""
    import importlib.abc
    import importlib.util
    import sys

    from executors.engines.ray import _factory_path

    package = tmp_path / "elsewhere" / "edit_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from tests.fakes import Echo\n\nclass Served(Echo):\n    pass\n")

    class EditableFinder(importlib.abc.MetaPathFinder):  # as setuptools' editable one
        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name != "edit_pkg":
                return None
            return importlib.util.spec_from_file_location(
                name, package / "__init__.py", submodule_search_locations=[str(package)])

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, EditableFinder()])
    monkeypatch.delitem(sys.modules, "edit_pkg", raising=False)
    import edit_pkg  # type: ignore[import-not-found]

    assert _factory_path(edit_pkg.Served) == ("edit_pkg:Served", "")
    monkeypatch.setattr(sys, "meta_path", sys.meta_path[:-1])  # a worker without it
    assert _factory_path(edit_pkg.Served) == (
        None, "its module 'edit_pkg' cannot be imported by that name")
