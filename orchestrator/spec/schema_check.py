"""Checking a value against a step's ``output_schema`` (JSON Schema, Draft 2020-12): an
LLM step's answer, a ``replay --set`` value."""

from __future__ import annotations

import functools
import json
from typing import Any

import referencing.exceptions
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from orchestrator.errors import ConfigError


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> Draft202012Validator:
    schema = json.loads(schema_text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problem(value: Any, schema: dict[str, Any]) -> str | None:
    """Check a value against a JSON Schema (Draft 2020-12).

    :returns: ``None`` when valid, else the most relevant error, located by JSON path.
    :raises ConfigError: when ``schema`` is not a valid JSON Schema, or holds a ``$ref``
        that cannot be resolved.
    """
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except SchemaError as exc:
        raise ConfigError(f"output_schema is not a valid JSON Schema: {exc.message}") from None
    try:
        error = best_match(validator.iter_errors(value))
    except referencing.exceptions.Unresolvable as exc:
        raise ConfigError(f"output_schema has a $ref that cannot be resolved: {exc}") from None
    if error is None:
        return None
    return f"at {error.json_path}: {error.message}"
