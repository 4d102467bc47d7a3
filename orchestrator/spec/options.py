"""Checking an ``options:`` mapping (a plan step's, a model's) against the pydantic model
of the planner or backend that reads it, each problem at its path inside the options.

``ponder validate`` reports each problem at its line; a run that was never validated (an
SDK run, a model given on the command line) refuses the options with
:func:`options_message` of the same problems, so one problem reads the same either way."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.errors import error_words

#: a problem of an ``options:`` mapping: its path inside them, and the message
OptionProblem = tuple[tuple[str | int, ...], str]


def option_problems(model: type[BaseModel], options: dict[str, Any], owner: str, *,
                    described_only: bool = False) -> list[OptionProblem]:
    """Every way ``options`` fails ``model``, each at its path inside the options.

    :param owner: who reads them, as messages start: ``"agot"`` gives ``agot options: ...``.
    :param described_only: an unknown key lists only the fields with a description (a
        planner's; the others are written by the planner itself), else every field.
    """
    out: list[OptionProblem] = []
    try:
        model.model_validate(options)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc) or "(options)"
            if err["type"] == "extra_forbidden":
                fields = _model_at(model, loc[:-1]).model_fields
                known = ", ".join(n for n, f in fields.items()
                                  if f.description or not described_only)
                out.append((loc, f"{owner} options: unknown option {where!r} (known: {known})"))
            else:
                out.append((loc, f"{owner} options: {where}: {error_words(err)}"))
    seen = {loc for loc, _ in out}
    out += [(loc, f"{owner} options: {'.'.join(map(str, loc))}: a number, not "
                  f"`{str(value).lower()}`")
            for loc, value in _booleans_for_numbers(model, options, ()) if loc not in seen]
    return out


def _model_at(model: type[BaseModel], path: tuple[str | int, ...]) -> type[BaseModel]:
    """The options model of the mapping at ``path`` inside ``model`` (a nested group of
    options, as the local backend's ``sampling``), ``model`` itself where none is."""
    for part in path:
        field = model.model_fields.get(str(part))
        kind = _bare(field.annotation) if field is not None else None
        if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
            return model
        model = kind
    return model


def _booleans_for_numbers(model: type[BaseModel], values: Any, at: tuple[str | int, ...]
                          ) -> list[tuple[tuple[str | int, ...], bool]]:
    """Each boolean given to a field of ``model`` that takes numbers only, with its path:
    pydantic's lax mode takes ``true`` as 1, so ``time_scale: true`` ran as 1, silently
    (the workflow's own fields refuse it: see ``orchestrator.spec.base.NOT_BOOL``)."""
    if not isinstance(values, dict):
        return []
    found: list[tuple[tuple[str | int, ...], bool]] = []
    for name, field in model.model_fields.items():
        key = field.alias if field.alias is not None and field.alias in values else name
        if key not in values:
            continue
        value, kind = values[key], _bare(field.annotation)
        if isinstance(value, bool) and _numbers_only(kind):
            found.append(((*at, key), value))
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            found += _booleans_for_numbers(kind, value, (*at, key))
    return found


def _bare(kind: Any) -> Any:
    """``kind`` without ``Annotated`` and ``| None``."""
    while typing.get_origin(kind) is typing.Annotated:
        kind = typing.get_args(kind)[0]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(kind) if m is not type(None)]
        return members[0] if len(members) == 1 else kind
    return kind


def _numbers_only(kind: Any) -> bool:
    members = (typing.get_args(kind) if typing.get_origin(kind) in (typing.Union,
                                                                     types.UnionType)
               else (kind,))
    members = tuple(m for m in members if m is not type(None))
    return bool(members) and all(m in (int, float) for m in members)


def options_message(problems: list[OptionProblem]) -> str:
    """The message a run refuses options with: every problem as validate words it,
    ``; ``-separated."""
    return "; ".join(message for _, message in problems)
