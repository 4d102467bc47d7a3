"""`ponder run | validate | schema`: thin commands over the SDK.

A user's mistake prints one line naming the offending value (with `--json`, also the
error document of :mod:`orchestrator.cli._failure` on stdout) and exits non-zero; a
traceback appears only with `--debug`.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import anyio
import typer
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from orchestrator.cli._console import (
    OutputError,
    closed_pipe,
    err,
    json_text,
    out,
    quiet_stdout,
    stdout_to_stderr,
    tolerate_encodings,
    write_json,
    write_text,
)
from orchestrator.cli._failure import (
    Failure,
    failure_of,
    problem_document,
    report,
    where,
    workflow_failure,
)
from orchestrator.cli._options import store_given
from orchestrator.cli._signals import StopSignals, run_stopping
from orchestrator.errors import (
    Problem,
    SpecError,
    ValidationFailed,
    clipped,
    shown,
    without_step_id,
)

# imported where used (and for type checking here): `ponder runs` and the other store
# commands need none of them, and importing them was half of every command's start
if TYPE_CHECKING:
    from orchestrator.graph.validate import ModelOverrides
    from orchestrator.runtime.engine import RunResult
    from orchestrator.runtime.registry import ConfigProblem, Registry
    from orchestrator.sdk import Workflow
    from orchestrator.spec.models import ModelConfig


def _usage_error() -> type[Any]:
    """The class of click's errors of a command line (typer from 0.2x carries its own
    copy of click, whose errors derive from ``typer.TyperException``)."""
    vendored = getattr(typer, "TyperException", None)
    if vendored is not None:
        return cast(type[Any], vendored)
    import click

    return click.ClickException


FLAG = ""
"""The ``metavar`` of a flag (``--json``): typer's boxed help labels a bool option
``<bool>``, as if it took a value; an empty one shows no label. (typer builds ``--help``
itself: :func:`_unlabel_help` gives it this one.)"""


def _unlabel_help(command: Any) -> None:
    """Give the ``--help`` option that typer builds for ``command`` (and for the commands
    below it) no type label: the help showed ``--help <bool>``, as if it took a value."""
    build = getattr(command, "get_help_option", None)
    if build is not None and not getattr(build, "_unlabelled", False):
        def get_help_option(ctx: Any) -> Any:
            option = build(ctx)
            if option is not None and getattr(option, "metavar", None) is None:
                option.metavar = FLAG
            return option

        get_help_option._unlabelled = True  # type: ignore[attr-defined]
        command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        _unlabel_help(sub)


class _Group(TyperGroup):
    """The ``ponder`` command group: with ``--json`` on the command line, a malformed
    command line (a missing argument, an option value of the wrong type, an unknown
    option) is reported as the JSON error document too. Off a terminal it is click's
    plain ``Error: ...`` line, not typer's panel, whose box wraps the message at 80
    columns. Every command prints whatever the locale's encoding (see
    :func:`~orchestrator.cli._console.tolerate_encodings`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _reflow_help(self)
        _unlabel_help(self)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        tolerate_encodings()
        try:
            return self._main(list(sys.argv[1:] if args is None else args), prog_name,
                              complete_var, standalone_mode, windows_expand_args, **extra)
        except OutputError as exc:  # printing --version, or a usage error's document
            sys.exit(_output_failed(exc))
        except OSError as exc:  # click's own printing: --help (each command reports its own)
            if exc.errno == errno.EPIPE:
                quiet_stdout()
                sys.exit(1)
            sys.exit(_output_failed(OutputError(exc)))

    def _main(self, argv: list[str], prog_name: str | None, complete_var: str | None,
              standalone_mode: bool, windows_expand_args: bool, **extra: Any) -> Any:
        as_json = "--json" in argv
        with _plain_help_when_narrow(self):
            if not standalone_mode or (not as_json and err.wraps):
                return super().main(argv, prog_name, complete_var, standalone_mode,
                                    windows_expand_args, **extra)
            try:
                code = super().main(argv, prog_name, complete_var, False,
                                    windows_expand_args, **extra)
            except _usage_error() as exc:
                if not as_json:
                    exc.show()
                    sys.exit(exc.exit_code)
                failure = Failure(exc.format_message(), kind="usage", code=exc.exit_code)
            except typer.Abort:
                failure = Failure("aborted", kind="interrupted", code=1)
            else:
                sys.exit(code if isinstance(code, int) else 0)
        report(failure, as_json)
        sys.exit(failure.code)


#: the narrowest help (in columns) that typer's boxed tables show whole: narrower, they
#: cut option names short (``--tool-…``) and wrap their help a word a line
MIN_BOXED_HELP_WIDTH = 60


def _help_width() -> int:
    """The width typer's help is laid out in: its ``TERMINAL_WIDTH``, else rich's
    (``COLUMNS``, else the terminal's, else 80)."""
    from rich.console import Console
    from typer import rich_utils

    return rich_utils.MAX_WIDTH or Console().width


@contextmanager
def _plain_help_when_narrow(group: TyperGroup) -> Iterator[None]:
    """On a console narrower than :data:`MIN_BOXED_HELP_WIDTH`, the help (and a usage
    error) of the group and of every command below it is click's plain text, which keeps
    option names whole, wrapped at the console's width (click's own minimum is 50
    columns): typer's ``rich_markup_mode=None`` and click's ``terminal_width``, set for
    this call only."""
    width = _help_width()
    if width >= MIN_BOXED_HELP_WIDTH:
        yield
        return
    settings = group.context_settings
    had_width = "terminal_width" in settings
    old_width = settings.get("terminal_width")
    settings["terminal_width"] = max(width - 2, 20)  # (click's margin)
    modes: list[tuple[Any, Any]] = []
    stack: list[Any] = [group]
    while stack:
        command = stack.pop()
        modes.append((command, getattr(command, "rich_markup_mode", None)))
        stack += getattr(command, "commands", {}).values()
    try:
        for command, _ in modes:
            command.rich_markup_mode = None
        yield
    finally:
        for command, mode in modes:
            command.rich_markup_mode = mode
        if had_width:
            settings["terminal_width"] = old_width
        else:
            del settings["terminal_width"]


def _reflow_help(group: Any) -> None:
    """Make each paragraph of the help of the group's commands (and theirs, below) one
    line, for the help to wrap at the terminal's width: typer keeps a docstring's line
    breaks after its first paragraph ("had in flight" then "continue under their own ids"
    on a line of its own at 80 columns), and shows the blank lines before a ``\\f``."""
    for command in getattr(group, "commands", {}).values():
        if command.help:
            text = command.help.split("\f")[0].strip()
            command.help = "\n\n".join(" ".join(line.strip() for line in part.splitlines())
                                       for part in text.split("\n\n") if part.strip())
        _reflow_help(command)


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False,
                  help="Ponder: run multi-step LLM reasoning workflows.")


def _version() -> str:
    """The installed package's version (its metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ponder")
    except PackageNotFoundError:  # the sources, not installed
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        out.print(f"ponder {_version()}", highlight=False, markup=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version, metavar=FLAG,
        help="Print Ponder's version and exit.")] = False,
) -> None:
    """Ponder: run multi-step LLM reasoning workflows."""


class _Exit(Exception):
    """Exit with this status: the command has reported its outcome already."""

    def __init__(self, code: int) -> None:
        self.code = code


def _fail(message: str, code: int = 1, *, kind: str = "usage",
          location: str | None = None) -> Failure:
    """A failure to raise: reported once, by :func:`_run_cli` (see ``_failure.KINDS``)."""
    return Failure(message, kind=kind, code=code, location=location)


def _parse_inputs(pairs: list[str], inputs_json: str | None) -> dict[str, Any]:
    """The inputs of ``--inputs-json JSON`` and ``--input key=value`` options (these
    override the JSON's keys; each key is given once). A ``--input`` value is an
    :class:`~orchestrator.spec.models.InputText`: read as JSON for an input of any type but
    string (``--inputs-json`` is how to give an input of type any a string that reads as
    JSON).

    :raises Failure: naming a malformed option or a key given twice.
    """
    from orchestrator.spec.models import InputText, non_finite

    values: dict[str, Any] = {}
    if inputs_json:
        inputs_json = _argv_text("--inputs-json", inputs_json)
        try:
            loaded = json.loads(inputs_json)
        except json.JSONDecodeError as exc:
            raise _fail(f"--inputs-json is not valid JSON: {exc.msg} at column {exc.colno}",
                        kind="input") from None
        except RecursionError:
            raise _fail(f"--inputs-json nests too deeply ({_DEEP})", kind="input") from None
        if not isinstance(loaded, dict):
            raise _fail("--inputs-json must be a JSON object", kind="input")
        for key, value in loaded.items():  # (a workflow without `inputs:` checks none)
            where = non_finite(value, key)
            if where is not None:
                raise _fail(f"--inputs-json: {where}, which JSON has no number for",
                            kind="input")
        values.update(loaded)
    given: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = _argv_text("--input", pair).partition("=")
        if not sep or not key:
            raise _fail(f"--input {shown(pair)} must look like key=value", kind="input")
        if key in given:
            raise _fail(f"--input {shown(key)} is given twice ({shown(given[key])}, then "
                        f"{shown(value)}): give it once (a list as JSON: "
                        f"--input '{clipped(key)}=[...]')", kind="input")
        given[key] = value
        values[key] = InputText(value)  # read as JSON for an input of type any too
    return values


def _argv_text(option: str, value: str) -> str:
    """A value of the command line as text. Under a locale that is not UTF-8 (``LANG=C``)
    Python keeps the bytes it cannot decode as surrogates, which no store or model could
    take: they are read as UTF-8 (what a terminal sends today).

    :raises Failure: naming the option when the bytes are not UTF-8 either.
    """
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        return os.fsencode(value).decode("utf-8")
    except UnicodeError:
        raise _fail(f"{option} {shown(value)} is not UTF-8 text; give inputs as UTF-8",
                    kind="input") from None


def _model_overrides(pairs: list[str]) -> dict[str, tuple[str, ModelConfig]]:
    """``--model NAME=FILE`` options: each FILE (returned with it) is one model config."""
    configs: dict[str, tuple[str, ModelConfig]] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise _fail(f"--model {shown(pair)} must look like NAME=FILE")
        label = clipped(name)
        if name in configs:
            raise _fail(f"--model {label} is given twice ({configs[name][0]}, then {path}): "
                        "give it once")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise _fail(f"--model {label}: cannot read {path}: {exc.strerror or exc}",
                        kind="file", location=path) from None
        except UnicodeDecodeError as exc:
            raise _fail(f"--model {label}: {path} is not UTF-8 text (byte {exc.start})",
                        kind="file", location=path) from None
        configs[name] = (path, _model_file(label, path, text))
    return configs


#: the hint of a ``--model`` FILE that holds nothing
_MODEL_FILE_HINT = "write a model config in it, e.g. `backend: simulated`"


def _model_file(label: str, path: str, text: str) -> ModelConfig:
    """The model config that the text of ``--model`` FILE gives.

    :raises Failure: with each problem of the file located (``FILE:line:column``) and
        worded as ``ponder validate`` words it for a model under a workflow's ``models:``
        (an unknown field names the one meant).
    """
    from dataclasses import replace

    from pydantic import ValidationError

    from orchestrator.spec.loader import parse_yaml, pydantic_problems
    from orchestrator.spec.models import ModelConfig

    data, smap, problems = parse_yaml(text, path)
    if data is None:  # not YAML, or empty: the loader's problems, less a workflow's hint
        empty = [replace(p, hint=_MODEL_FILE_HINT) for p in problems
                 if p.message.startswith("the file is empty")]
        raise _model_failure(label, path, empty or problems,
                             "holds no model config" if empty else "is not valid YAML",
                             kind="file")
    if not problems and not isinstance(data, dict):
        problems = [smap.problem((), f"a model config is a mapping of fields, not "
                                     f"{shown(data)}", _MODEL_FILE_HINT)]
    elif not problems and "steps" in data and not set(data) <= set(ModelConfig.model_fields):
        problems = [smap.problem(("steps",), "this file is a workflow (it has `steps:`), not "
                                 "a model config", "give --model a file of one model's fields "
                                 "(`backend:`, `model:`, `base_url:`...)")]
    if not problems:
        try:
            return ModelConfig.model_validate(data)
        except ValidationError as exc:
            problems = pydantic_problems(exc, data, smap, root=ModelConfig)
    raise _model_failure(label, path, problems, "is not a valid model config")


def _model_failure(label: str, path: str, problems: list[Problem], said: str, *,
                   kind: str = "config") -> Failure:
    """The failure of a ``--model`` FILE with these problems (each printed before it)."""
    n = len(problems)
    return Failure(f"--model {label}: {path} {said} ({n} problem{'s' if n != 1 else ''})",
                   kind=kind, location=where(problems[0]) if problems else path,
                   problems=problems)


#: what ends a line of a YAML file, as YAML (and the loader's line numbers) count lines
_YAML_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _not_utf8(file: Path, data: bytes, exc: UnicodeDecodeError) -> Problem:
    """The problem of a file holding a byte that is not UTF-8, located by line (a LF, a
    CRLF, a lone CR... each ends one) and by byte of that line."""
    lines = _YAML_BREAK.split(data[:exc.start].decode("utf-8"))  # UTF-8 up to the byte
    line, column = len(lines), len(lines[-1].encode("utf-8")) + 1
    return Problem(f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}",
                   "save the workflow as UTF-8", str(file), line, column)


def _utf8_problem(file: Path) -> Problem | None:
    """The problem of a workflow file that is not UTF-8 text, located at its first bad
    byte; None for one that is (or cannot be read: loading it says why)."""
    try:
        data = file.read_bytes()
        data.decode("utf-8")
    except OSError:
        return None
    except UnicodeDecodeError as exc:
        return _not_utf8(file, data, exc)
    return None


def _workflow_problems(file: Path, overrides: ModelOverrides | None = None) -> list[Problem]:
    """Every problem of a workflow file; one that is not UTF-8 text has that one.

    :param overrides: check the models as the run uses them (``--backend``, ``--model``).
    """
    from orchestrator.graph.validate import validate_file

    if str(file) == "-" and not file.exists():  # (a file named - is ./-)
        return [Problem("cannot read -: a workflow is read from its file, not from standard "
                        "input", "save it to a file: the tools and sub-workflows it names "
                        "are found from the file's folder", "-")]
    problem = _utf8_problem(file)
    return [problem] if problem is not None else validate_file(file, overrides=overrides)


def _load(file: Path, overrides: ModelOverrides | None = None) -> Workflow:
    """Load a workflow, or fail with every problem it has (its models checked as the run
    uses them: see :class:`~orchestrator.graph.validate.ModelOverrides`)."""
    from orchestrator.sdk import Workflow

    problems = _workflow_problems(file, overrides)
    if problems:
        raise workflow_failure(problems, file)
    try:
        return Workflow.from_yaml(file)
    except ValidationFailed as exc:
        raise workflow_failure(exc.problems, file) from None


def _leaf(exc: BaseException) -> BaseException:
    """The single error inside (nested) exception groups from task groups, if only one."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _run_cli(fn: Callable[[], None], debug: bool, as_json: bool = False) -> None:
    """Run a command's body; report how it failed, if it did, and exit with its status.

    A failure is one line on stderr and, with ``as_json``, the error document on stdout
    (:mod:`orchestrator.cli._failure`); with ``debug`` an unexpected error (or one of
    Ponder's own) is raised with its traceback instead.

    Standard output closed by its reader (``ponder runs | head -1``) ends the command
    with status 1 and no message, as click's own commands end then.
    """
    try:
        try:
            fn()
        except BaseExceptionGroup as group:
            raise _leaf(group) from None
    except _Exit as exc:
        raise typer.Exit(exc.code) from None
    except typer.Exit:
        raise
    except OutputError as exc:
        raise typer.Exit(_output_failed(exc)) from None
    except OSError as exc:
        if not closed_pipe(exc):
            raise _reported(exc, debug, as_json) from None
        quiet_stdout()
        raise typer.Exit(1) from None
    except (Exception, KeyboardInterrupt) as exc:
        raise _reported(exc, debug, as_json) from None


def _output_failed(exc: OutputError) -> int:
    """Report that standard output refused what the command printed, on standard error
    only (not as the JSON error document: standard output is what refuses it), and make
    what standard output still holds go nowhere, for Python's last flush of it not to
    fail at exit. :returns: the exit status."""
    quiet_stdout()
    failure = Failure(str(exc), kind="file", code=1)
    report(failure, as_json=False)
    return failure.code


def _reported(exc: BaseException, debug: bool, as_json: bool) -> BaseException:
    """Report the error that ended a command; :returns: the exit to raise for it (the
    error itself with ``debug``, unless it is a failure reported on purpose)."""
    if debug and isinstance(exc, Exception) and not isinstance(exc, Failure):
        return exc
    failure = failure_of(exc)
    report(failure, as_json)
    return typer.Exit(failure.code)


Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.", metavar=FLAG)]


Db = Annotated[str | None, typer.Option(
    "--db", callback=store_given,
    help="Trace store URL (default: PONDER_DB_URL or ~/.ponder/ponder.db).")]


class _RunCommand(TyperCommand):
    """``ponder run``: an extra argument that looks like an input (``ponder run FILE
    spiders=4``) is refused saying how to give it (``--input spiders=4``); click's
    "Got unexpected extra argument(s) (spiders=4)" did not."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = list(args)  # (the parser consumes the list it is given)
        try:
            return super().parse_args(ctx, args)
        except _usage_error() as exc:
            message = str(exc.format_message())
            if not message.startswith("Got unexpected extra argument"):
                raise
            _, extra, _ = self.make_parser(ctx).parse_args(args=given)
            inputs = [a for a in extra if "=" in a[1:] and not a.startswith("-")]
            if not inputs:
                raise
            give = " ".join(f"--input {shlex.quote(a)}" for a in inputs)
            ctx.fail(f"{message}: a workflow input is given as an option: {give}")
            raise  # (ctx.fail raises)


@app.command(cls=_RunCommand)
def run(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Workflow YAML file.")],
    input: Annotated[list[str], typer.Option("--input", "-i", metavar="KEY=VALUE",
                                             help="A workflow input (repeatable).")] = [],  # noqa: B006
    inputs_json: Annotated[str | None, typer.Option("--inputs-json", help="Inputs as a JSON object.")] = None,
    backend: Annotated[str | None, typer.Option(
        help="Override every model's backend: local, openai, simulated.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.",
                                          metavar=FLAG)] = False,
    db: Db = None,
    tool_executor: Annotated[str | None, typer.Option(
        "--tool-executor", help="Run tool steps with this executor, e.g. ray-tool "
        "(cluster address: PONDER_RAY_ADDRESS).")] = None,
    model: Annotated[list[str], typer.Option(
        "--model", "-m", metavar="NAME=FILE",
        help="Serve the model alias NAME, which a step uses, with "
        "the model config in the YAML FILE (e.g. a simulated backend's scripted outputs; "
        "repeatable).")] = [],  # noqa: B006
    debug: Debug = False,
) -> None:
    """Run a workflow and print its output. Exit 0 only when the run succeeded.

    Every event is stored in the trace store before the run acts on it. Ctrl-C (or
    SIGTERM) cancels the run, records it as cancelled and exits 130 (143).
    """

    from orchestrator.graph.validate import ModelOverrides, run_model
    from orchestrator.runtime.registry import Registry
    from orchestrator.runtime.run_checks import aliases_served
    from orchestrator.spec.models import ModelConfig

    def go() -> None:
        _check_backend(backend, Registry.default())
        overrides = _model_overrides(model)
        # the file's own config of a model --model replaces is not checked, nor the options
        # of one --backend runs without them: the run uses neither
        with stdout_to_stderr():  # what a tool module prints as it is imported
            wf = _load(file, ModelOverrides(backend, frozenset(overrides)))
        # --model serves this file's models, which its sub-workflows without models:
        # of their own run on (one with models: uses those)
        used = aliases_served(wf.spec, wf.base_dir, wf.registry)
        for name, (path, config) in overrides.items():
            declared = wf.spec.models
            if declared and name not in declared and name != "default" and name not in used:
                raise _fail(f"--model {clipped(name)}: {file} declares no model {shown(name)} "
                            f"(models: {', '.join(sorted(declared))})")
            if name not in used and (declared or name != "default"):
                # it would serve nothing, silently
                if name in declared:
                    said = f"declares model {shown(name)} but no step uses it"
                elif declared:  # `default`, not declared
                    said = f"has no step that uses model {shown(name)}"
                else:
                    said = f"declares no models and no step uses model {shown(name)}"
                raise _fail(f"--model {clipped(name)}: {file} {said} " + (
                    f"(models used: {', '.join(sorted(used))})" if used
                    else "(it uses no model)"))
            _check_override(name, path, run_model(config, backend), wf.registry)
        if overrides and not wf.spec.models:
            # without `models:` a step's alias is `default` or one given with --model
            # (any other is unknown to the compile check): `default` gets its --model,
            # or the bundled model's config, before the given ones are set below
            default = overrides["default"][1] if "default" in overrides else ModelConfig()
            for alias in used:
                wf.spec.models[alias] = default
        for name, (_, config) in overrides.items():
            wf.spec.models[name] = config
        _check_model_configs(wf, backend, file, overrides)
        if tool_executor:  # the run records it: a resume runs its tool steps there again
            _tool_executor(tool_executor, wf.registry)
        values = _parse_inputs(input, inputs_json)
        _check_inputs(wf, values)
        # from here until the result is printed, a signal cancels the run (until it has
        # finished) and never ends the command: see _signals
        with StopSignals() as stops:
            with stdout_to_stderr():  # a tool's prints: stdout holds the result alone
                result = anyio.run(_run_async, wf, values, backend, not as_json, db, stops,
                                   tool_executor or None)
            _report(result, as_json, bool(wf.spec.outputs))
        if not result.ok:
            raise _Exit(_exit_status(result, stops.signal if result.status == "cancelled"
                                     else None))

    _run_cli(go, debug, as_json)


def _check_inputs(wf: Workflow, values: dict[str, Any]) -> None:
    """Fail when the inputs do not fit the workflow (:meth:`Workflow.check_inputs`, as
    the run checks them), before the store opens and the run starts.

    The failure's ``location`` is the declaration of the first input missing or refused;
    a missing input's message says how to give it and where it is declared (there is no
    value to name)."""
    try:
        wf.check_inputs(values)
    except (SpecError, RecursionError) as exc:
        failure = _input_failure(exc, values)
        if isinstance(failure, Failure) and failure.kind == "input":
            _locate_inputs(failure, wf, values)
        raise failure from None


def _locate_inputs(failure: Failure, wf: Workflow, values: dict[str, Any]) -> None:
    """Give an input failure the place of the inputs it is about, in the workflow file."""
    missing: list[str] = []
    offending: list[str] = []
    as_json: list[str] = []  # the text given for a list or an object, which is read as JSON
    for name, decl in wf.spec.inputs.items():
        if name not in values:
            if decl.is_required:
                missing.append(name)
                offending.append(name)
            continue
        try:
            decl.accept(name, values[name])
        except (ValueError, RecursionError):
            offending.append(name)
            if decl.type in ("array", "object") and _not_json(values[name]):
                brackets = "[...]" if decl.type == "array" else "{...}"
                as_json.append(f"--input '{clipped(name)}={brackets}'")

    def at(name: str) -> str | None:
        line, column = wf.source.locate(("inputs", name))
        return f"{wf.source.file}:{line}:{column}" if line else None

    if offending:
        failure.location = at(offending[0])
    if missing:
        places = [p for p in map(at, missing) if p is not None]
        give = " ".join(f"--input {clipped(name)}=VALUE" for name in missing)
        failure.message += (f"; give {'it' if len(missing) == 1 else 'them'} with {give}"
                            + (f" (declared at {', '.join(places)})" if places else ""))
    for option in as_json:
        failure.message += f"; give it as JSON: {option}"


def _not_json(value: Any) -> bool:
    """Whether ``value`` is text that does not read as JSON (``--input topics=tides`` for
    a list)."""
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except (ValueError, RecursionError):
        return True
    return False


def _input_failure(exc: Exception, values: dict[str, Any]) -> Exception:
    """The failure of inputs the run refused (``exc``), or ``exc`` when not theirs."""
    if isinstance(exc, SpecError) and not isinstance(exc, ValidationFailed):
        return _fail(str(exc), kind="input")
    if isinstance(exc, RecursionError):
        deep = next((k for k, v in values.items() if isinstance(v, str) and _too_deep(v)), None)
        if deep is not None:
            return _fail(f"input {shown(deep)} nests too deeply ({_DEEP})", kind="input")
    return exc


#: what a value nesting too deeply for Python's JSON parser is told
_DEEP = "more nested arrays and objects than JSON parsing allows"


def _too_deep(text: str) -> bool:
    try:
        json.loads(text)
    except RecursionError:
        return True
    except ValueError:
        pass
    return False


def _tool_executor(name: str, registry: Registry) -> None:
    """Fail when ``--tool-executor NAME`` names no executor of tool steps (``tool``,
    ``ray-tool``, an installed plugin's) that loads, in the words of the run's own check
    (:func:`~orchestrator.runtime.run_checks.tool_executor_problem`): ``llm``, another
    step kind's, failed every tool step with an AttributeError."""
    from orchestrator.runtime.run_checks import tool_executor_problem

    problem = tool_executor_problem(name, registry)
    if problem is not None:
        raise _fail(f"--tool-executor {shown(name)}: {problem}", kind="config")


def _check_backend(backend: str | None, registry: Registry) -> None:
    """Fail when ``--backend`` names an LLM backend that is not installed (in the words of
    the SDK's check, :func:`~orchestrator.sdk.backend_problem`)."""
    from orchestrator.sdk import backend_problem

    problem = backend_problem(backend, registry)
    if problem is not None:
        raise _fail(f"--backend {shown(backend)}: {problem}", kind="config")


@dataclass(frozen=True, slots=True)
class _Served:
    """A model alias a run serves.

    :param label: how the message names it (``'big'``, or ``'big' of sub.yaml``).
    :param config: its config as the run uses it.
    :param fix: where to give a field it lacks, as a function of the field
        (``model: NAME``); None when only the environment can.
    """

    label: str
    config: ModelConfig
    fix: Callable[[str], str] | None


def _check_model_configs(wf: Workflow, backend: str | None, file: Path,
                         overrides: dict[str, tuple[str, ModelConfig]]) -> None:
    """Fail when models the run uses, in the workflow or a sub-workflow, lack what their
    backend needs in this environment (``Registry.backend_config_problems``: an ``openai``
    model with no model name to send, or with neither a server of its own nor a key for
    OpenAI's), with every problem, each naming its models and where to give the field
    that fixes it. Each of their steps failed at run time instead (the run checks the
    same before it starts, in words that know no files: :func:`~orchestrator.runtime.
    run_checks.check_model_configs`)."""
    found: dict[ConfigProblem, list[_Served]] = {}
    for served in _models_served(wf, backend, file, overrides):
        for problem in wf.registry.backend_config_problems(served.config):
            found.setdefault(problem, []).append(served)
    if found:
        said = f"--backend {backend}: " if backend is not None else ""
        raise _fail(said + "; ".join(
            f"{problem.problem} for {_labels(served)}: {problem.fix}"
            + _or_fix(served[0], problem.field) for problem, served in found.items()),
            kind="config")


def _labels(served: list[_Served]) -> str:
    return f"model{'s' if len(served) > 1 else ''} {', '.join(s.label for s in served)}"


def _or_fix(served: _Served, field: str) -> str:
    return f", or {served.fix(field)}" if served.fix is not None else ""


def _models_served(wf: Workflow, backend: str | None, file: Path,
                   overrides: dict[str, tuple[str, ModelConfig]]) -> list[_Served]:
    """The models the run serves: the aliases the workflow's steps use, then those of the
    sub-workflows it runs, found as the run finds them (one with ``models:`` runs on
    those, one without on its caller's: :func:`~orchestrator.runtime.run_checks.
    run_workflows`)."""
    from orchestrator.graph.validate import run_model
    from orchestrator.runtime.run_checks import aliases_used as _aliases_used
    from orchestrator.runtime.run_checks import run_workflows
    from orchestrator.spec.models import ModelConfig

    found: dict[tuple[str | None, str], _Served] = {}

    def served(alias: str, declared: ModelConfig, of: str | None,
               where: Path | None) -> _Served:
        config = run_model(declared, backend)
        if of is not None:  # a sub-workflow's own model: --model does not serve it
            return _Served(f"{shown(alias)} of {of}", config,
                           None if where is None or declared.backend != config.backend
                           else lambda field: f"give `{field}` under `models: {alias}` in "
                                              f"{where}")
        if alias in overrides:
            return _Served(shown(alias), config,
                           lambda field: f"give `{field}` in {overrides[alias][0]}")
        if backend is None or declared.backend == backend:
            return _Served(shown(alias), config,
                           lambda field: f"give `{field}` under `models: {alias}` in {file}")
        return _Served(shown(alias), config, lambda field: (
            f"serve it with --model {alias}=FILE, a model config giving `backend: "
            f"{config.backend}` "
            f"and `{field}` (see examples/models/openai_compatible.yaml)"))

    for run in run_workflows(wf.spec, file.resolve().parent, wf.registry,
                             shown_dir=file.parent):
        owner = run.models_of
        # the workflow that declares the models, as a message names it, and its file
        of = None if owner is None else (
            f"sub-workflow {owner if isinstance(owner, Path) else shown(owner)}")
        where = owner if isinstance(owner, Path) else None
        for alias in sorted(_aliases_used(run.spec.steps)):
            if (of, alias) not in found:
                declared = run.spec.models.get(alias, ModelConfig())
                found[of, alias] = served(alias, declared, of, where)
    return list(found.values())


def _check_override(name: str, path: str, config: ModelConfig, registry: Registry) -> None:
    """Fail when the config ``--model NAME=FILE`` gives (as the run uses it) names a backend
    that is not installed or options that backend refuses, in the words of ``ponder
    validate`` about a model in a workflow file."""
    from orchestrator.graph.validate import model_problems

    problems = model_problems(name, config, registry)
    if problems:
        place = _model_file_place(path, problems[0][0])
        raise _fail(f"{place}: " + "; ".join(message + (f" ({hint})" if hint else "")
                                             for _, message, hint in problems),
                    kind="config", location=place)


def _model_file_place(path: str, where: tuple[str | int, ...]) -> str:
    """``FILE:line:column`` of the value at ``where`` in the ``--model`` FILE (which has
    loaded already), as ``ponder validate`` locates a problem of a model in a workflow
    file; ``FILE`` alone when it cannot be found."""
    from orchestrator.spec.loader import parse_yaml

    try:
        _, smap, _ = parse_yaml(Path(path).read_text(encoding="utf-8"), path)
    except (OSError, UnicodeDecodeError):
        return path
    line, column = smap.locate(where)
    return f"{path}:{line}:{column}" if line else path


async def _run_async(wf: Workflow, values: dict[str, Any], backend: str | None,
                     live: bool, db: str | None, stops: StopSignals,
                     tool_executor: str | None = None) -> RunResult:
    """Open the store, run, close the store; a stop signal (``stops``) cancels the run,
    or the opening of the store before it (see :func:`~orchestrator.cli._signals.
    run_stopping`).

    :raises Failure: when a signal came before the run could start.
    """
    from orchestrator.store import open_store

    async def start(store: Any, hooks: list[Any],
                    on_scheduler: Callable[[Any], None]) -> RunResult:
        return await _run_with_hooks(wf, values, backend, live, hooks, on_scheduler,
                                     tool_executor)

    return await run_stopping(stops, lambda: open_store(db), start, what="the run")


async def _run_with_hooks(wf: Workflow, values: dict[str, Any], backend: str | None,
                          live: bool, hooks: list[Any],
                          on_scheduler: Callable[[Any], None],
                          tool_executor: str | None = None) -> RunResult:
    """Run with the live view on a terminal, handing the run's scheduler to
    ``on_scheduler`` (a stop signal cancels the run through it, and it is recorded as
    cancelled)."""
    view = None
    if live and err.is_terminal:
        from orchestrator.cli.live import LiveView

        view = LiveView(err)
        hooks.append(view)
    if view is not None:
        view.live.start()
    try:
        return await wf.run(values, backend=backend, hooks=hooks, on_scheduler=on_scheduler,
                            tool_executor=tool_executor)
    finally:
        if view is not None:
            view.live.stop()


def _exit_status(result: RunResult, stopped_by: int | None) -> int:
    """The exit status of a finished run: 0 when it succeeded, 128 + the signal's number
    when a signal cancelled it (130 for Ctrl-C, 143 for SIGTERM, as a shell reports a
    command that a signal ended), else 1."""
    if result.ok:
        return 0
    return 128 + stopped_by if stopped_by is not None else 1


def _report(result: RunResult, as_json: bool, declares_outputs: bool) -> None:
    """Print a run's outcome: the summary on stderr, the output on stdout.

    :param declares_outputs: whether the workflow declares ``outputs:``. Only then is
        a single output printed as its value alone; without them the output is the last
        step's, whose one-key object (``{"name": ...}``) is printed whole, as one of more
        keys is.
    """
    if as_json:
        write_json(result.to_json(), default=str)
        return
    style = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}[result.status]
    err.print(f"[{style}]{result.status}[/{style}] run {escape(result.run_id)} in "
              f"{result.duration_s:.2f}s, tokens {result.usage.prompt_tokens}+"
              f"{result.usage.completion_tokens}", highlight=False)
    status = {s.id: s.status for s in result.steps}
    told = False  # whether a step's line says why the run did not succeed
    for s in result.steps:
        if s.status == "cancelled" and s.parent and status.get(s.parent) == "succeeded":
            continue  # a fan-out's child its join did not need (first_finish, adaptive_vote)
        if s.status in ("failed", "cancelled") or (s.status == "skipped" and s.error and
                                                    "branch" not in s.error):
            err.print(f"  {s.id}: {s.status}: {without_step_id(s.id, s.error)}",
                      highlight=False, markup=False)
            told = True
        elif s.status == "succeeded" and (s.meta or {}).get("finish_reason") == "length":
            meta = s.meta or {}
            if meta.get("stopped_at") == "n_ctx":  # the prompt and answer filled it
                err.print(f"  {s.id}: stopped at the model's context window (n_ctx "
                          f"{meta.get('n_ctx')}): its answer may be cut off; shorten the "
                          "prompt or raise n_ctx", highlight=False, markup=False)
                continue
            limit = meta.get("max_tokens")
            err.print(f"  {s.id}: stopped at max_tokens"
                      f"{f' ({limit})' if limit is not None else ''}: its answer may be cut "
                      "off", highlight=False, markup=False)
    if result.status == "failed" and not told and result.error:
        # every step succeeded: the run failed on its outputs (a type, a schema, a path)
        err.print(f"  {result.error}", highlight=False, markup=False)
    if result.status == "cancelled":
        err.print(f"continue it with `ponder resume {result.run_id}`", highlight=False,
                  markup=False, soft_wrap=True)
    if result.ok:
        output = result.output
        if declares_outputs and isinstance(output, dict) and len(output) == 1:
            output = next(iter(output.values()))
        text = output if isinstance(output, str) else json_text(output, indent=2)
        out.print(text, highlight=False, markup=False)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Workflow YAML files.")],
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object: every file with its problems.",
        metavar=FLAG)] = False,
    debug: Debug = False,
) -> None:
    """Check workflow files; report every problem with file:line:column and a hint."""

    def go() -> None:
        found: list[Problem] = []
        checked: list[dict[str, Any]] = []
        for file in files:
            problems = _workflow_problems(file)
            checked.append({"file": str(file), "ok": not problems,
                            "problems": [problem_document(p) for p in problems]})
            found += problems
            if as_json:
                continue  # printed once, with the failure
            for p in problems:
                err.print(p.format(), highlight=False, markup=False, soft_wrap=True)
            if not problems:
                out.print(f"{file}: ok", highlight=False, markup=False)
        if found:
            raise Failure(f"{len(found)} problem{'s' if len(found) != 1 else ''} found",
                          kind="workflow", location=where(found[0]),
                          problems=found if as_json else None,
                          files=checked if as_json else None)
        if as_json:
            write_json({"status": "ok", "files": checked})

    _run_cli(go, debug, as_json)


@app.command()
def schema(
    which: Annotated[str, typer.Argument(
        metavar="WHICH",
        help="workflow | trace_event | reference (markdown YAML reference)")] = "workflow",
    write: Annotated[Path | None, typer.Option(help="Write every schema into this folder.")] = None,
    debug: Debug = False,
) -> None:
    """Print the JSON Schema of workflow files (or of trace events)."""
    from orchestrator.schemas import all_schemas, yaml_reference

    def go() -> None:
        if which == "reference":
            write_text(yaml_reference() + "\n")
            return
        schemas = all_schemas()
        if write is not None:
            if write.exists() and not write.is_dir():
                raise _fail(f"--write {write}: a file, not a folder; give a folder (it is "
                            "made if missing)", kind="file", location=str(write))
            for name, doc in schemas.items():
                path = write / f"{name}.schema.json"
                try:
                    write.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(doc, indent=2) + "\n")
                except OSError as exc:
                    raise _fail(f"--write {write}: cannot write {path}: {exc.strerror or exc}",
                                kind="file", location=str(path)) from None
                out.print(f"wrote {path}", highlight=False, markup=False)
            return
        if which not in schemas:
            raise _fail(f"unknown schema {shown(which)}; one of: {', '.join(schemas)}, reference")
        write_text(json.dumps(schemas[which], indent=2) + "\n")

    _run_cli(go, debug)


def main() -> None:
    """Entry point of the `ponder` console script (see :func:`orchestrator.cli.main`)."""
    app()


# the commands the other modules define: they import this one's helpers, which are all
# defined by now, and register their commands on `app` themselves (so that importing one
# of them first works too: this module, importing it back, finds it half-initialised)
from orchestrator.cli import store_cmds as _store_cmds  # noqa: E402,F401  (registers commands)

# isort: split
# (after the store commands, so that `plan` is listed after `db`, whichever came first)
from orchestrator.cli import plan_cmd as _plan_cmd  # noqa: E402,F401  (registers `plan`)
from orchestrator.viewer.cli import view as _view  # noqa: E402

# the list of commands shows a one-line summary (the docstring's first paragraph would be
# shown with its line breaks)
app.command(name="view", short_help="Serve the web viewer of the trace store's runs.")(_view)
