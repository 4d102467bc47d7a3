"""`ponder plan parse FILE|- [--json]`: check an LLMCompiler plan without running it.

Prints the parsed DAG (id, tool, arguments, dependencies), or every error with its
line. The parser is found through the ``ponder.planners`` entry points, so this
module does not import ``planners/``.

Exit status: 0 when the plan is valid, 1 when it has errors, 2 when it could not be
checked (an unreadable or non-UTF-8 file, a bad option, an unknown planner, a workflow
that does not load), as ``grep`` and ``diff`` do.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli._console import err as _err
from orchestrator.cli._console import json_text, write_json
from orchestrator.cli._console import out as _out
from orchestrator.cli._failure import workflow_failure
from orchestrator.cli.commands import FLAG, Debug, _Exit, _run_cli, _utf8_problem, app
from orchestrator.cli.commands import _fail as fail
from orchestrator.errors import ConfigError, PonderError, ToolError, ValidationFailed, shown

if TYPE_CHECKING:  # (imported where used: the other commands need none of it)
    from orchestrator.runtime.registry import ToolSpec

plan_app = typer.Typer(add_completion=False, no_args_is_help=True,
                       help="Inspect planner output without running it.")
app.add_typer(plan_app, name="plan")


def _parser(planner: str) -> Any:
    eps = {ep.name: ep for ep in entry_points(group="ponder.planners")}
    if planner not in eps:
        raise ConfigError(f"unknown planner {shown(planner)}; known: {', '.join(sorted(eps))}")
    cls = eps[planner].load()
    if not hasattr(cls, "parse_document"):
        raise ConfigError(f"planner {planner!r} has no plan parser")
    return cls


def _tools(names: list[str], workflow: Path | None) -> tuple[list[ToolSpec], bool]:
    """The allowed tools, and whether other names pass too: ``--tool`` names only; else a
    workflow's tools and the built-ins only; else the built-ins and any other name."""
    from orchestrator.runtime.engine import workflow_tools
    from orchestrator.runtime.registry import Registry
    from orchestrator.spec.loader import load_yaml

    registry = Registry.default()
    if workflow is not None:
        problem = _utf8_problem(workflow)
        if problem is not None:
            raise ValidationFailed([problem])
        spec, smap = load_yaml(workflow)
        registry = registry.with_workflow_tools(
            workflow_tools(spec, registry, workflow.resolve().parent, smap))
    chosen = names or sorted(registry.tool_names())
    for name in chosen:
        if name not in registry.tool_names():
            raise ConfigError(
                f"--tool {shown(name)} is neither a built-in tool nor one of "
                f"{'the workflow' if workflow else 'a workflow'}'s `tools:` (a plan's "
                "arguments are checked against the tool's signature): "
                + ("" if workflow else "give --workflow FILE, or ")
                + "leave out --tool to accept any tool name")
    return [registry.get_tool(n) for n in chosen], not names and workflow is None


@plan_app.command("parse")
def parse(
    file: Annotated[str, typer.Argument(
        metavar="FILE", help="Plan text file, or - for standard input.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.",
                                          metavar=FLAG)] = False,
    fmt: Annotated[str, typer.Option("--format", help="text | json | auto")] = "auto",
    tool: Annotated[list[str], typer.Option("--tool", "-t", metavar="NAME",
                                            help="An allowed tool, built-in or from "
                                            "--workflow (repeatable; without it: the built-ins "
                                            "and any other name, unchecked).")
                    ] = [],  # noqa: B006
    workflow: Annotated[Path | None, typer.Option(help="Take the allowed tools from this "
                                                  "workflow's `tools:` and the built-ins.")] = None,
    first_id: Annotated[int, typer.Option(help="Number of the plan's first action.")] = 1,
    planner: Annotated[str, typer.Option(help="Planner whose format this is.")] = "llmcompiler",
    debug: Debug = False,
) -> None:
    """Parse an LLMCompiler plan and print its DAG, or every error with its line.

    Exit 0 when it is valid, 1 when it has errors, 2 when it cannot be checked
    (unreadable file, bad option)."""

    def go() -> None:
        text = _read(file)
        if fmt not in ("text", "json", "auto"):
            raise fail(f"--format must be text, json or auto, not {shown(fmt)}", 2)
        if first_id < 1:  # actions are numbered from 1 ($1), a replan's after the last
            raise fail(f"--first-id {first_id}: the first action's number is 1 or more", 2)
        try:
            tools, any_tool = _tools(tool, workflow)
            doc = _parser(planner).parse_document(text, tools=tools, any_tool=any_tool,
                                                  fmt=fmt, first_id=first_id)
        except ValidationFailed as exc:
            failure = workflow_failure(exc.problems, workflow)
            failure.code = 2
            raise failure from None
        except PonderError as exc:
            kind = "config" if isinstance(exc, ConfigError | ToolError) else "usage"
            raise fail(str(exc), 2, kind=kind) from None
        doc["unchecked_tools"] = _unchecked(doc, tools) if any_tool else []
        # it qualifies an "ok": a plan with errors is reported by them
        doc["note"] = _note(doc["unchecked_tools"]) if doc["ok"] else None
        if as_json:
            write_json(doc)
        else:
            _print(doc, "<stdin>" if file == "-" else file)
        if not doc["ok"]:
            raise _Exit(1)

    _run_cli(go, debug, as_json)


def _unchecked(doc: dict[str, Any], tools: list[ToolSpec]) -> list[str]:
    """The plan's tools that are no built-in, taken on trust (no --tool, no --workflow)."""
    known = {t.name for t in tools}
    return sorted({a["tool"] for a in doc["actions"]} - known)


def _note(unchecked: list[str]) -> str | None:
    """Why an "ok" does not vouch for ``unchecked`` tools, and how to have them checked."""
    if not unchecked:
        return None
    names = ", ".join(shown(n) for n in unchecked[:5])
    more = f" and {len(unchecked) - 5} more" if len(unchecked) > 5 else ""
    what = ("tool {} is not a built-in tool: its name and arguments were" if len(unchecked) == 1
            else "tools {} are not built-in tools: their names and arguments were")
    return (what.format(names + more) + " not checked; give --workflow FILE (its `tools:`) or "
            "--tool NAME to check them")


def _read(file: str) -> str:
    """The plan's text (a BOM dropped); exits 2 when it cannot be read or is not UTF-8."""
    name = "<stdin>" if file == "-" else file
    try:
        if file == "-":
            stream = getattr(sys.stdin, "buffer", None)
            data = stream.read() if stream is not None else sys.stdin.read().encode()
        else:
            data = Path(file).read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {name}: {exc.strerror or exc}", 2, kind="file",
                   location=name) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = _line_of(data, exc.start)
        raise fail(f"{name}:{line}: not UTF-8 text: byte 0x{data[exc.start]:02x} at offset "
                   f"{exc.start} ({exc.reason}); save the plan as UTF-8", 2, kind="file",
                   location=f"{name}:{line}") from None


def _line_of(data: bytes, offset: int) -> int:
    """The 1-based line of byte ``offset``, where a LF, a CRLF and a lone CR each end a
    line, as the plan parsers count lines."""
    before = data[:offset]
    return before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1


def _print(doc: dict[str, Any], name: str) -> None:
    for a in doc["actions"]:
        deps = ", ".join(f"${d}" for d in a["deps"]) or "-"
        args = json_text(a["args"])
        _out.print(f"{a['id']:>3}  {a['tool']}  {args}  deps: {deps}", highlight=False,
                   markup=False, soft_wrap=True)
    for e in doc["errors"]:
        where = f"{name}:{e['line']}" if e["line"] else name
        _err.print(f"{where}: error: {e['message']} [{e['code']}]", highlight=False,
                   markup=False, soft_wrap=True)
    if doc.get("note"):
        _err.print(f"{name}: note: {doc['note']}", highlight=False, markup=False,
                   soft_wrap=True)
    n, bad = len(doc["actions"]), len(doc["errors"])
    if bad:
        _err.print(f"{bad} error{'s' if bad != 1 else ''} in the plan", highlight=False)
    else:
        answer = f"; answer: ${doc['answer']}" if doc.get("answer") is not None else ""
        _out.print(f"ok: {n} action{'s' if n != 1 else ''} ({doc['format']} format){answer}",
                   highlight=False, markup=False)
