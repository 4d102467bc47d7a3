"""`ponder run | validate | schema`: thin commands over the SDK.

A user's mistake prints a message and exits non-zero; a traceback appears only
with `--debug`.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer
from rich.console import Console
from rich.markup import escape

from orchestrator.errors import PonderError, Problem, ValidationFailed
from orchestrator.graph.validate import validate_file
from orchestrator.runtime.engine import RunResult
from orchestrator.sdk import Workflow
from orchestrator.spec.models import ModelConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Ponder: run multi-step LLM reasoning workflows.")
err = Console(stderr=True)
out = Console()


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _fail(message: str, code: int = 1) -> _Exit:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return _Exit(code)


def _parse_inputs(pairs: list[str], inputs_json: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if inputs_json:
        try:
            loaded = json.loads(inputs_json)
        except json.JSONDecodeError as exc:
            raise _fail(f"--inputs-json is not valid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(loaded, dict):
            raise _fail("--inputs-json must be a JSON object")
        values.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _fail(f"--input {pair!r} must look like key=value")
        values[key] = value
    return values


def _model_overrides(pairs: list[str]) -> dict[str, ModelConfig]:
    """``--model NAME=FILE`` options: each FILE is one model config (YAML)."""
    import yaml
    from pydantic import ValidationError

    configs: dict[str, ModelConfig] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise _fail(f"--model {pair!r} must look like NAME=FILE")
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise _fail(f"--model {name}: cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise _fail(f"--model {name}: {path} is not UTF-8 text (byte {exc.start})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            raise _fail(f"--model {name}: {path}{where} is not valid YAML: "
                        f"{getattr(exc, 'problem', None) or exc}") from None
        try:
            configs[name] = ModelConfig.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
            raise _fail(f"--model {name}: {path}: {loc}: {first['msg']}") from None
    return configs


def _print_problems(problems: list[Problem]) -> None:
    for p in problems:
        err.print(p.format(), highlight=False, markup=False, soft_wrap=True)


def _load(file: Path) -> Workflow:
    """Load a workflow, or print every problem it has and exit 1."""
    problems = validate_file(file)
    if problems:
        _print_problems(problems)
        n = len(problems)
        raise _fail(f"{n} problem{'s' if n != 1 else ''} in {file}")
    try:
        return Workflow.from_yaml(file)
    except ValidationFailed as exc:
        _print_problems(exc.problems)
        raise _fail(f"{len(exc.problems)} problem(s) in {file}") from None


def _leaf(exc: BaseException) -> BaseException:
    """The single error inside (nested) exception groups from task groups, if only one."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _run_cli(fn: Any, debug: bool) -> None:
    try:
        try:
            fn()
        except BaseExceptionGroup as group:
            raise _leaf(group) from None
    except _Exit as exc:
        raise typer.Exit(exc.code) from None
    except PonderError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None
    except Exception as exc:
        if debug:
            raise
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))} "
                  "(run again with --debug for the traceback)", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Workflow YAML file.")],
    input: Annotated[list[str], typer.Option("--input", "-i", help="key=value (repeatable).")] = [],  # noqa: B006
    inputs_json: Annotated[str | None, typer.Option("--inputs-json", help="Inputs as a JSON object.")] = None,
    backend: Annotated[str | None, typer.Option(
        help="Override every model's backend: local, openai, simulated.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    db: Annotated[str | None, typer.Option("--db", help="Trace store URL (default: "
                                           "PONDER_DB_URL or ~/.ponder/ponder.db).")] = None,
    tool_executor: Annotated[str | None, typer.Option(
        "--tool-executor", help="Run tool steps with this executor, e.g. ray-tool "
        "(cluster address: PONDER_RAY_ADDRESS).")] = None,
    model: Annotated[list[str], typer.Option(
        "--model", "-m", help="NAME=FILE: serve the model alias NAME with the model config "
        "in the YAML FILE (e.g. a simulated backend's scripted outputs; repeatable).")] = [],  # noqa: B006
    debug: Debug = False,
) -> None:
    """Run a workflow and print its output. Exit 0 only when the run succeeded.

    Every event is stored in the trace store before the run acts on it.
    """

    def go() -> None:
        wf = _load(file)
        for name, config in _model_overrides(model).items():
            declared = wf.spec.models
            if declared and name not in declared and name != "default":
                raise _fail(f"--model {name}: {file} declares no model {name!r} "
                            f"(models: {', '.join(sorted(declared))})")
            wf.spec.models[name] = config
        if tool_executor:
            wf.register_executor("tool", wf.registry.executor(tool_executor))
        values = _parse_inputs(input, inputs_json)
        result = anyio.run(_run_async, wf, values, backend, not as_json, db)
        _report(result, as_json)
        if not result.ok:
            raise _Exit(1)

    _run_cli(go, debug)


async def _run_async(wf: Workflow, values: dict[str, Any], backend: str | None,
                     live: bool, db: str | None) -> RunResult:
    from orchestrator.store import StoreHook, open_store

    store = await open_store(db)  # an unreachable store: no run starts
    try:
        return await _run_with_hooks(wf, values, backend, live, [StoreHook(store)])
    finally:
        await store.close()


async def _run_with_hooks(wf: Workflow, values: dict[str, Any], backend: str | None,
                          live: bool, hooks: list[Any]) -> RunResult:
    holder: dict[str, Any] = {}
    view = None
    if live and err.is_terminal:
        from orchestrator.cli.live import LiveView

        view = LiveView(err)
        hooks.append(view)

    async with anyio.create_task_group() as tg:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    err.print("[yellow]cancelling...[/yellow]")
                    sched = holder.get("scheduler")
                    if sched is not None:
                        sched.cancel()

        tg.start_soon(watch_signals)
        if view is not None:
            view.live.start()
        try:
            result = await wf.run(values, backend=backend, hooks=hooks,
                                  on_scheduler=lambda s: holder.__setitem__("scheduler", s))
        finally:
            if view is not None:
                view.live.stop()
            tg.cancel_scope.cancel()
    return result


def _report(result: RunResult, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False, default=str) + "\n")
        return
    style = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}[result.status]
    err.print(f"[{style}]{result.status}[/{style}] run {escape(result.run_id)} in "
              f"{result.duration_s:.2f}s, tokens {result.usage.prompt_tokens}+"
              f"{result.usage.completion_tokens}", highlight=False)
    for s in result.steps:
        if s.status in ("failed", "cancelled") or (s.status == "skipped" and s.error and
                                                    "branch" not in s.error):
            err.print(f"  {s.id}: {s.status}: {s.error}", highlight=False, markup=False)
    if result.ok:
        output = result.output
        if isinstance(output, dict) and len(output) == 1:
            output = next(iter(output.values()))
        text = output if isinstance(output, str) else json.dumps(output, indent=2,
                                                                 ensure_ascii=False)
        out.print(text, highlight=False, markup=False)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Workflow YAML files.")],
    debug: Debug = False,
) -> None:
    """Check workflow files; report every problem with file:line:column and a hint."""

    def go() -> None:
        bad = 0
        for file in files:
            problems = validate_file(file)
            _print_problems(problems)
            bad += len(problems)
            if not problems:
                out.print(f"{file}: ok", highlight=False)
        if bad:
            raise _fail(f"{bad} problem{'s' if bad != 1 else ''} found")

    _run_cli(go, debug)


@app.command()
def schema(
    which: Annotated[str, typer.Argument(
        help="workflow | trace_event | reference (markdown YAML reference)")] = "workflow",
    write: Annotated[Path | None, typer.Option(help="Write every schema into this folder.")] = None,
) -> None:
    """Print the JSON Schema of workflow files (or of trace events)."""
    from orchestrator.schemas import all_schemas, yaml_reference

    if which == "reference":
        sys.stdout.write(yaml_reference() + "\n")
        return
    schemas = all_schemas()
    if write is not None:
        write.mkdir(parents=True, exist_ok=True)
        for name, doc in schemas.items():
            (write / f"{name}.schema.json").write_text(json.dumps(doc, indent=2) + "\n")
            out.print(f"wrote {write / (name + '.schema.json')}")
        return
    if which not in schemas:
        err.print(f"[red]error:[/red] unknown schema {escape(repr(which))}; one of: "
                  f"{', '.join(schemas)}", highlight=False)
        raise typer.Exit(1)
    sys.stdout.write(json.dumps(schemas[which], indent=2) + "\n")


def main() -> None:
    """Entry point of the `ponder` console script."""
    app()
