"""Checking an ``options:`` mapping (a plan step's, a model's) against the pydantic model
of the planner or backend that reads it, each problem at its path inside the options.

``ponder validate`` reports each problem at its line; a run that was never validated (an
SDK run, a model given on the command line) refuses the options with
:func:`options_message` of the same problems, so one problem reads the same either way."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.errors import shown

#: a problem of an ``options:`` mapping: its path inside them, and the message
OptionProblem = tuple[tuple[str | int, ...], str]


def option_problems(model: type[BaseModel], options: dict[str, Any], owner: str, *,
                    described_only: bool = False) -> list[OptionProblem]:
    """Every way ``options`` fails ``model``, each at its path inside the options.

    :param owner: who reads them, as messages start: ``"agot"`` gives ``agot options: ...``.
    :param described_only: an unknown key lists only the fields with a description (a
        planner's; the others are written by the planner itself), else every field.
    """
    try:
        model.model_validate(options)
    except ValidationError as exc:
        fields = model.model_fields
        known = ", ".join(n for n, f in fields.items() if f.description or not described_only)
        out: list[OptionProblem] = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc) or "(options)"
            if err["type"] == "extra_forbidden":
                out.append((loc, f"{owner} options: unknown option {where!r} (known: {known})"))
            else:
                out.append((loc, f"{owner} options: {where}: {err['msg']} "
                                 f"(got {shown(err.get('input'))})"))
        return out
    return []


def options_message(problems: list[OptionProblem]) -> str:
    """The message a run refuses options with: every problem as validate words it,
    ``; ``-separated."""
    return "; ".join(message for _, message in problems)
