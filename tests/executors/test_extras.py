"""A backend built without its extra says what to install in the words ``ponder
validate`` uses for it (orchestrator._extras): Ponder is installed from its clone, so the
hint gives ``pip install -e ".[EXTRA]"`` and the package index's form."""

from __future__ import annotations

import sys

import pytest

from executors.engines import ray as ray_module
from executors.engines.ray import RayEngineBackend
from executors.engines.vllm import VLLMBackend, load_vllm_api
from orchestrator._extras import install_hint, installed
from orchestrator.errors import ConfigError
from orchestrator.spec.models import ModelConfig


def test_the_hint_gives_both_install_forms() -> None:
    assert install_hint("gpu") == (
        "pip install -e \".[gpu]\" in Ponder's clone, or pip install \"ponder[gpu]\"")


def test_a_module_set_to_none_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert installed("json")
    monkeypatch.setitem(sys.modules, "json", None)
    assert not installed("json")
    assert not installed("no_such_module_of_ponder.sub")


def test_vllm_missing_is_worded_as_validate_words_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    expected = VLLMBackend.missing_extra(ModelConfig(backend="vllm", model="m"))
    assert expected is not None and install_hint("gpu") in expected
    with pytest.raises(ConfigError) as info:
        load_vllm_api()
    assert str(info.value).startswith(expected)


def test_ray_missing_is_worded_as_validate_words_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    config = ModelConfig(backend="ray-engine", options={"engine": {"backend": "simulated"}})
    expected = RayEngineBackend.missing_extra(config)
    assert expected is not None and install_hint("ray") in expected
    with pytest.raises(ConfigError, match="Ray is not installed") as info:
        ray_module._ray()
    assert install_hint("ray") in str(info.value)
