"""The `ponder` command as a user runs it: exit codes, JSON output, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def ponder(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_run_json_has_the_documented_fields() -> None:
    proc = ponder("run", "examples/quickstart.yaml", "--backend", "simulated", "--json",
                  "--input", "spiders=4")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {"run_id", "status", "output", "steps", "usage", "duration_s"} <= set(doc)
    assert doc["status"] == "succeeded"
    assert doc["output"]["total_legs"] == 4 * 8 + 2 * 6
    step = doc["steps"][0]
    assert {"id", "kind", "status", "attempts", "started_at", "finished_at", "error",
            "output"} <= set(step)
    outputs = {s["id"]: s["output"] for s in doc["steps"]}
    assert outputs["total_legs"] == doc["output"]["total_legs"]
    assert doc["usage"]["completion_tokens"] > 0


def test_validate_reports_located_problems_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - id: a\n    kind: tool\n    tool: nope\n"
                   "  - id: b\n    kind: llm\n    prompt: '{{ steps.zz.output }}'\n")
    proc = ponder("validate", str(bad))
    assert proc.returncode == 1
    assert f"{bad}:5:5: error: unknown tool 'nope'" in proc.stderr
    assert f"{bad}:8:5: error: unknown step 'zz'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate_reports_fanout_and_join_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n"
                   "  - {id: s, kind: sample, prompt: p, n: 2}\n"
                   "  - {id: j, kind: join, of: s, reducer: first_finish, first: 3}\n"
                   "  - {id: sp, kind: spawn, messages: [a], workflow: gone.yaml}\n"
                   "  - {id: b, kind: join, of: sp, reducer: best_of_n,\n"
                   "     scorer: {tool: nope}}\n")
    proc = ponder("validate", str(bad))
    assert proc.returncode == 1
    assert f"{bad}:4:" in proc.stderr and "first 3 is more than the 2 children" in proc.stderr
    assert f"{bad}:5:" in proc.stderr and "sub-workflow 'gone.yaml' not found" in proc.stderr
    assert f"{bad}:7:" in proc.stderr and "unknown tool 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_of_a_broken_file_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - id: a\n    kind: llm\n   prompt: x\n")
    proc = ponder("run", str(bad))
    assert proc.returncode == 1 and "YAML syntax" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_inputs_are_named() -> None:
    proc = ponder("run", "examples/quickstart.yaml", "--backend", "simulated",
                  "--input", "spiders=many")
    assert proc.returncode == 1
    assert "input 'spiders' must be integer, got 'many'" in proc.stderr
    proc = ponder("run", "examples/quickstart.yaml", "--backend", "simulated",
                  "--input", "spiders=many", "--input", f"question={'long ' * 30}")
    # one line however long (it was wrapped at 80 columns when not on a terminal)
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    proc = ponder("run", "examples/quickstart.yaml", "--inputs-json", "{nope")
    assert proc.returncode == 1 and "--inputs-json is not valid JSON" in proc.stderr


def test_a_tool_that_raises_fails_its_step_and_keeps_the_rest(tmp_path: Path) -> None:
    wf = tmp_path / "w.yaml"
    wf.write_text("name: t\nsteps:\n"
                  "  - {id: ok, kind: tool, tool: calc, args: {expression: '6*7'}}\n"
                  "  - {id: boom, kind: tool, tool: calc, args: {expression: '1/0'}}\n"
                  "  - {id: after, kind: tool, tool: calc, args: {expression: '${steps.boom.output}'}}\n")
    proc = ponder("run", str(wf), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    steps = {s["id"]: s for s in doc["steps"]}
    assert doc["status"] == "failed"
    assert steps["ok"]["status"] == "succeeded"
    assert steps["boom"]["status"] == "failed" and "division by zero" in steps["boom"]["error"]
    assert steps["after"]["status"] == "skipped"
    assert "Traceback" not in proc.stderr


class _Flaky(BaseHTTPRequestHandler):
    """Answers 429, then 500, then 500... (counts requests)."""

    hits = 0

    def do_POST(self) -> None:
        type(self).hits += 1
        self.send_response(429 if type(self).hits == 1 else 500)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": {"message": "overloaded"}}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def _openai_workflow(tmp_path: Path, url: str) -> Path:
    wf = tmp_path / "w.yaml"
    wf.write_text(f"name: t\nmodels:\n  default: {{backend: openai, base_url: '{url}', "
                  "model: m}\ndefaults:\n  retry: {max_attempts: 3, initial_backoff_s: 0.01}\n"
                  "steps:\n  - {id: ask, kind: llm, prompt: hi}\n"
                  "  - {id: sum, kind: tool, tool: calc, args: {expression: '1+1'}}\n")
    return wf


def test_server_answering_429_and_500_is_retried_then_fails_clearly(
        tmp_path: Path, flaky_server: str) -> None:
    _Flaky.hits = 0
    proc = ponder("run", str(_openai_workflow(tmp_path, flaky_server)), "--json")
    doc = json.loads(proc.stdout)
    steps = {s["id"]: s for s in doc["steps"]}
    assert proc.returncode == 1
    assert steps["ask"]["attempts"] == 3 and _Flaky.hits == 3
    assert "500" in steps["ask"]["error"]
    assert steps["sum"]["status"] == "succeeded"
    assert "Traceback" not in proc.stderr


def test_unreachable_server_names_the_url(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    proc = ponder("run", str(_openai_workflow(tmp_path, url)), "--json")
    doc = json.loads(proc.stdout)
    ask = next(s for s in doc["steps"] if s["id"] == "ask")
    assert proc.returncode == 1
    assert f"127.0.0.1:{port}" in ask["error"]
    assert "Traceback" not in proc.stderr


BRACKETS = """\
name: brackets
models: {default: {backend: simulated, options: {time_scale: 0}}}
steps:
  - {id: s, kind: sample, prompt: Propose., n: 2}
  - id: j
    kind: join
    of: s
    reducer: first_finish
    check: {tool: extract, args: {text: "${candidate}", pattern: "."}}
"""


def test_show_prints_ids_with_brackets_as_written(tmp_path: Path) -> None:
    wf = tmp_path / "brackets.yaml"
    wf.write_text(BRACKETS)
    db = f"sqlite:///{tmp_path / 'trace.db'}"
    proc = ponder("run", str(wf), "--db", db, "--json")
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]
    env = {**os.environ, "COLUMNS": "200"}
    show = subprocess.run([sys.executable, "-m", "orchestrator.cli", "show", run_id, "--db", db],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert show.returncode == 0, show.stderr
    for sid in ("s[0]", "s[check0]"):
        assert any(line.split()[:1] == [sid] for line in show.stdout.splitlines()), show.stdout


def test_run_says_which_answers_stopped_at_max_tokens(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "name: t\nsteps:\n  - {id: long, kind: llm, prompt: 'Say a lot.', max_tokens: 3}\n"
        "  - {id: short, kind: llm, prompt: 'Hi', max_tokens: 200}\n")
    (tmp_path / "sim.yaml").write_text(
        "backend: simulated\noptions:\n  output_tokens: text\n  responses:\n"
        "    - {match: 'Say a lot', output: 'one two three four five six'}\n"
        "    - {match: 'Hi', output: 'Hello.'}\n")
    proc = ponder("run", str(tmp_path / "wf.yaml"), "--model",
                  f"default={tmp_path / 'sim.yaml'}", "--db", "memory://")
    assert proc.returncode == 0, proc.stderr
    assert "  long: stopped at max_tokens (3): its answer may be cut off\n" in proc.stderr
    assert "short:" not in proc.stderr  # it finished on its own


def test_backend_override_drops_options_written_for_another_backend(tmp_path: Path) -> None:
    wf = tmp_path / "w.yaml"
    wf.write_text("name: t\nmodels:\n  default: {backend: local, options: {n_ctx: 4096}}\n"
                  "  sim: {backend: simulated, options: {output_tokens: text,\n"
                  "        responses: [{match: hi, output: fixed answer}]}}\n"
                  "steps:\n  - {id: a, kind: llm, prompt: hi, max_tokens: 4}\n"
                  "  - {id: b, kind: llm, model: sim, prompt: hi}\n")
    proc = ponder("run", str(wf), "--backend", "simulated", "--db", "memory://", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # n_ctx was refused before
    steps = {s["id"]: s for s in json.loads(proc.stdout)["steps"]}
    assert steps["b"]["output"] == "fixed answer"  # a model already on it keeps its options
