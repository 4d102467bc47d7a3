"""Finding and validating the JSON value in a model's answer."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from orchestrator.errors import ConfigError

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_OPENERS = re.compile(r"[\[{]")


def extract_json(text: str) -> Any:
    """The JSON value an answer holds.

    Tried in order: the content of the first Markdown code fence, the whole text,
    then the first ``{`` or ``[`` from which a complete JSON value decodes.

    :param text: the model's raw answer.
    :returns: the decoded value.
    :raises ValueError: when the text holds no JSON value.
    """
    stripped = text.strip()
    candidates = []
    fenced = _FENCE.search(stripped)
    if fenced:
        candidates.append(fenced.group(1).strip())
    candidates.append(stripped)
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
    decoder = json.JSONDecoder()
    for source in candidates:
        for opener in _OPENERS.finditer(source):
            try:
                value, _ = decoder.raw_decode(source, opener.start())
            except json.JSONDecodeError:
                continue
            return value
    raise ValueError("the answer holds no JSON value")


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> Draft202012Validator:
    schema = json.loads(schema_text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problem(value: Any, schema: dict[str, Any]) -> str | None:
    """Check a value against a JSON Schema (Draft 2020-12).

    :returns: ``None`` when valid, else the most relevant error, located by JSON path.
    :raises ConfigError: when ``schema`` is not a valid JSON Schema.
    """
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except SchemaError as exc:
        raise ConfigError(f"output_schema is not a valid JSON Schema: {exc.message}") from None
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    return f"at {error.json_path}: {error.message}"
