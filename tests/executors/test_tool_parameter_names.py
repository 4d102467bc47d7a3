"""A tool's parameter names meet pydantic's model of its arguments. Names of BaseModel's
old methods (`json`, `schema`, `copy`) work, without pydantic's "shadows an attribute"
warning printed at each load; a name pydantic keeps (`_x`, `model_dump`) is refused when
the tool is registered, naming it. `_x` was silently no argument ("tool 'f' has no
argument '_x'; its arguments: none"), `model_dump` an internal error."""

from __future__ import annotations

import warnings

import pytest

from orchestrator.errors import ConfigError
from orchestrator.sdk import Workflow


def fetch(url: str, json: bool = False, schema: str = "s", copy: bool = False) -> list[object]:
    return [url, json, schema, copy]


def test_names_of_basemodel_methods_are_arguments_without_warnings() -> None:
    wf = Workflow("names")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wf.register_tool(fetch)
    wf.tool("f", "fetch", url="u", json=True, schema="x", copy=True)
    assert wf.run_sync().output == ["u", True, "x", True]


def _private(_x: int = 1) -> int:
    return _x


def _dumps(model_dump: int = 1) -> int:
    return model_dump


@pytest.mark.parametrize(("fn", "message"), [
    (_private, "tool '_private': a parameter cannot be named '_x': pydantic, which validates "
               "a tool's arguments, keeps a name that starts with '_' for itself; rename it"),
    (_dumps, "tool '_dumps': a parameter cannot be named 'model_dump': pydantic, which "
             "validates a tool's arguments, keeps the name of BaseModel.model_dump for "
             "itself; rename it"),
])
def test_a_name_pydantic_keeps_is_refused_naming_it(fn: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Workflow("kept").register_tool(fn)  # type: ignore[arg-type]
    assert str(info.value) == message
