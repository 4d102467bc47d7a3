"""Checking a value against a step's ``output_schema`` (JSON Schema, Draft 2020-12): an
LLM step's answer, a ``replay --set`` value."""

from __future__ import annotations

import functools
import json
from typing import Any

import referencing
import referencing.exceptions
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from referencing.jsonschema import DRAFT202012

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


def _refs(node: Any, path: tuple[str | int, ...] = ()
          ) -> list[tuple[str, tuple[str | int, ...]]]:
    """Every ``$ref`` string in a schema, with where it is."""
    if isinstance(node, dict):
        found = [(node["$ref"], (*path, "$ref"))] if isinstance(node.get("$ref"), str) else []
        return found + [r for k, v in node.items() for r in _refs(v, (*path, k))]
    if isinstance(node, list):
        return [r for j, v in enumerate(node) for r in _refs(v, (*path, j))]
    return []


def _has_id(node: Any) -> bool:
    if isinstance(node, dict):
        return "$id" in node or any(_has_id(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_id(v) for v in node)
    return False


def schema_definition_problem(schema: Any) -> tuple[str, tuple[str | int, ...]] | None:
    """What is wrong with an ``output_schema`` itself, before any value meets it: not a
    JSON Schema (Draft 2020-12), or a ``$ref`` within it that points nowhere (checked
    for ``#...`` references of a schema without ``$id``; others when a value meets them).

    :returns: ``None`` when the schema can be used, else the message a step would fail
        with and where in the schema (keys and indexes; empty for the whole schema).
    """
    try:
        _validator(json.dumps(schema, sort_keys=True))
    except SchemaError as exc:
        return f"output_schema is not a valid JSON Schema: {exc.message}", tuple(exc.path)
    except (TypeError, ValueError) as exc:  # not JSON at all (a Python object in the SDK)
        return f"output_schema is not JSON: {exc}", ()
    if _has_id(schema):
        return None
    resolver = referencing.Registry().with_resource(
        "urn:ponder:output-schema", DRAFT202012.create_resource(schema)
    ).resolver("urn:ponder:output-schema")
    for ref, where in _refs(schema):
        if not ref.startswith("#"):
            continue
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable:
            return f"output_schema has a $ref that cannot be resolved: {ref}", where
    return None
