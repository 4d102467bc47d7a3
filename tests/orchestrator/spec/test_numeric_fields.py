"""Every field of the workflow spec that takes numbers refuses a boolean (pydantic's lax
mode takes ``True`` as 1) and a string that holds a number (it takes ``"3"`` as 3):
declared with ``Integer``/``Number`` of ``spec.base``, not ``int``/``float``. A field
added later with a bare ``int`` fails here."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from orchestrator.spec.base import BOOL_NOT_NUMBER, STRING_NOT_NUMBER, _Model
from orchestrator.spec.models import WorkflowSpec


def _models(root: type[BaseModel]) -> set[type[BaseModel]]:
    """The models reachable from ``root`` through its fields' types."""
    seen: set[type[BaseModel]] = set()
    todo: list[Any] = [root]
    while todo:
        kind = todo.pop()
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            if kind not in seen:
                seen.add(kind)
                todo += [f.annotation for f in kind.model_fields.values()]
        else:
            todo += typing.get_args(kind)
    return seen


def _numeric(kind: Any) -> bool:
    members = (typing.get_args(kind) if typing.get_origin(kind) in (typing.Union,
                                                                     types.UnionType)
               else (kind,))
    members = tuple(m for m in members if m is not type(None))
    return bool(members) and all(
        m in (int, float) or (typing.get_origin(m) is typing.Literal
                              and all(type(v) is int for v in typing.get_args(m)))
        for m in members)


_FIELDS = sorted((model.__name__, name) for model in _models(WorkflowSpec)
                 for name, field in model.model_fields.items() if _numeric(field.annotation))
_BY_NAME = {m.__name__: m for m in _models(WorkflowSpec)}


def test_the_walk_finds_the_spec_models_and_their_numbers() -> None:
    assert {"LLMStep", "SampleStep", "SpawnStep", "JoinStep", "MapBody", "RetryPolicy",
            "ModelConfig", "Budget", "Scorer"} <= set(_BY_NAME)
    assert all(issubclass(m, _Model) for m in _BY_NAME.values() if m is not _Model)
    assert ("LLMStep", "max_tokens") in _FIELDS and ("WorkflowSpec", "version") in _FIELDS
    assert len(_FIELDS) > 40


@pytest.mark.parametrize(("model", "name"), _FIELDS)
@pytest.mark.parametrize("value", [True, False])
def test_a_numeric_field_refuses_a_boolean(model: str, name: str, value: bool) -> None:
    with pytest.raises(ValidationError) as info:
        _BY_NAME[model].model_validate({name: value})
    assert [e["type"] for e in info.value.errors() if e["loc"] == (name,)] == [BOOL_NOT_NUMBER]


@pytest.mark.parametrize(("model", "name"), _FIELDS)
@pytest.mark.parametrize("value", ["1", "2.0", " 3 "])
def test_a_numeric_field_refuses_a_string_holding_a_number(model: str, name: str,
                                                           value: str) -> None:
    with pytest.raises(ValidationError) as info:
        _BY_NAME[model].model_validate({name: value})
    types_ = [e["type"] for e in info.value.errors() if e["loc"] == (name,)]
    assert types_ in ([STRING_NOT_NUMBER], ["literal_error"]), types_  # `version: "1"`


_SCHEMA = json.loads((Path(__file__).parents[3] / "schemas" / "workflow.schema.json")
                     .read_text(encoding="utf-8"))


@pytest.mark.parametrize(("model", "name"), _FIELDS)
def test_the_published_schema_agrees(model: str, name: str) -> None:
    """schemas/workflow.schema.json refused a boolean there all along (JSON Schema's
    integer and number exclude booleans), and a string such as "3", while validation took
    both: now both refuse them, and they agree on numbers in and out of the field's
    bounds, a whole float (3.0) among them."""
    where = _SCHEMA if model == "WorkflowSpec" else _SCHEMA["$defs"][model]
    validator = jsonschema.Draft202012Validator(
        {"$defs": _SCHEMA["$defs"], **where["properties"][name]})
    for value in (True, False, -1, 0, 0.5, 1, 2, 3, 100, 10**7, 3.0, "1", "3", "0.5", " 2 "):
        try:
            _BY_NAME[model].model_validate({name: value})
            taken = True
        except ValidationError as exc:
            taken = not [e for e in exc.errors() if e["loc"][:1] == (name,)]
        assert validator.is_valid(value) == taken, value
