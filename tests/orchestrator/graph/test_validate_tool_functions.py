"""`ponder validate` reports a `tools:` entry whose module holds no such function (as
`ponder run` does) at the entry's line, by reading the module's source: it never imports
the module, which would run the code of a workflow someone sent. It said "ok" and only
`run` failed ("module 'json' has no attribute 'nofunc'")."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.graph.validate import validate_file

MODULE = """\
import json as _json
from json import dumps as imported
from os import path  # noqa
open(__file__ + ".ran", "w").close()  # importing it leaves a mark: validate must not


def shout(text: str) -> str:
    return text.upper()


class Tools:
    def inner(self) -> None:
        def hidden() -> None: ...


try:
    from json import loads as fallback
except ImportError:
    fallback = None
if True:
    def in_if() -> None: ...
assigned = lambda: 1  # noqa: E731
"""


def _validate(tmp_path: Path, tools: dict[str, str]) -> list[tuple[int, int, str]]:
    (tmp_path / "mytools.py").write_text(MODULE)
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "sub.py").write_text("def f() -> None: ...\n")
    entries = "".join(f"  {name}: '{target}'\n" for name, target in tools.items())
    first = next(iter(tools))
    wf = tmp_path / "w.yaml"
    wf.write_text(f"name: t\ntools:\n{entries}steps:\n"
                  f"  - {{id: a, kind: tool, tool: {first}, args: {{}}}}\n")
    problems = validate_file(wf)
    assert not (tmp_path / "mytools.py.ran").exists(), "validate imported the module"
    return [(p.line, p.column, p.message) for p in problems]


def test_a_missing_function_is_reported_at_its_entry(tmp_path: Path) -> None:
    assert _validate(tmp_path, {"ok": "mytools:shout", "nof": "json:nofunc",
                                "gone": "mytools:nothing"}) == [
        (4, 3, "tool 'nof': module 'json' has no attribute 'nofunc' (tool 'json:nofunc')"),
        (5, 3, "tool 'gone': module 'mytools' has no attribute 'nothing' "
               "(tool 'mytools:nothing')"),
    ]


@pytest.mark.parametrize("target", [
    "mytools:shout", "mytools:Tools", "mytools:Tools.inner", "mytools:imported",
    "mytools:_json", "mytools:path", "mytools:fallback", "mytools:in_if", "mytools:assigned",
    "mypkg:sub", "mypkg:x", "json:dumps", "math:sqrt", "sys:exit",
])
def test_a_name_the_module_binds_is_no_problem(tmp_path: Path, target: str) -> None:
    assert _validate(tmp_path, {"t": target}) == []


def test_a_name_bound_inside_a_function_is_not_the_modules(tmp_path: Path) -> None:
    (line, _, message), = _validate(tmp_path, {"t": "mytools:hidden"})
    assert line == 3 and "has no attribute 'hidden'" in message


@pytest.mark.parametrize("source", [
    "def __getattr__(name): ...\n",
    "from json import *\n",
    "globals()['f'] = print\n",
])
def test_a_module_whose_names_reading_cannot_tell_is_left_to_the_run(
        tmp_path: Path, source: str) -> None:
    (tmp_path / "dyn.py").write_text(source)
    assert _validate(tmp_path, {"t": "dyn:f"}) == []


def test_a_module_that_does_not_compile_is_reported_without_importing_it(
        tmp_path: Path) -> None:
    """`ponder validate` said "ok" of a module with a syntax error; `ponder run` did not."""
    (tmp_path / "broken.py").write_text("x = 1\ndef f(:\n    pass\n")
    wf = tmp_path / "w.yaml"
    wf.write_text("name: t\ntools:\n  b: broken:f\nsteps:\n"
                  "  - {id: a, kind: tool, tool: b, args: {}}\n")
    (problem,) = validate_file(wf)
    assert (problem.line, problem.column) == (3, 3)
    assert problem.message == ("tool 'b': importing module 'broken' for tool 'broken:f' "
                               "failed: SyntaxError: invalid syntax (broken.py, line 2)")
    assert problem.hint == "fix the module's syntax at that line"


def test_a_module_that_exits_as_it_is_imported_is_a_located_error(tmp_path: Path) -> None:
    """It ended `ponder run` silently, exit status 5, no run recorded."""
    from typer.testing import CliRunner

    from orchestrator.cli import app

    (tmp_path / "quits.py").write_text("import sys\nsys.exit(5)\ndef f() -> int:\n    return 1\n")
    wf = tmp_path / "w.yaml"
    wf.write_text("name: t\ntools:\n  q: quits:f\nsteps:\n  - {id: a, kind: tool, tool: q}\n")
    assert validate_file(wf) == []  # reading the source cannot tell
    result = CliRunner().invoke(app, ["run", str(wf), "--db", "memory://"])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        f"{wf}:3:3: error: importing module 'quits' for tool 'quits:f' failed: the module "
        "calls sys.exit(5) as it is imported"), result.stderr
