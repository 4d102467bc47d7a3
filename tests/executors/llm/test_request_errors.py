"""The one rule of whose fault an in-process engine's error is (executors.llm._request_errors)."""

from __future__ import annotations

import json

from executors.llm._request_errors import is_request_error
from orchestrator.errors import ConfigError, StepDefinitionError


def test_a_value_or_type_error_of_the_engine_is_the_requests_fault() -> None:
    assert is_request_error(ValueError("Requested tokens (4100) exceed context window"))
    assert is_request_error(TypeError("unexpected keyword argument 'temperatur'"))
    assert is_request_error(json.JSONDecodeError("bad schema", "{", 0))  # a ValueError


def test_ponders_own_errors_and_other_errors_are_not() -> None:
    assert not is_request_error(StepDefinitionError("not a step"))  # a ValueError too
    assert not is_request_error(ConfigError("no such model"))
    assert not is_request_error(RuntimeError("llama_decode returned -1"))

