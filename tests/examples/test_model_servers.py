"""The README's "Your own model server" recipes and the model configs in examples/models/
run as written, against a small OpenAI-compatible server on 127.0.0.1 standing in for
vLLM (only the base URL is changed)."""

from __future__ import annotations

import json
import re
import shlex
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator import Workflow
from orchestrator.cli import app

ROOT = Path(__file__).resolve().parents[2]
MODELS = sorted((ROOT / "examples" / "models").glob("*.yaml"))
ANSWER = "Spiders have eight legs, ants six."


class ChatServer(ThreadingHTTPServer):
    """Answers every chat completion with ANSWER, streamed (server-sent events) or not,
    and keeps each request's JSON body."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: ChatServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append({**body, "path": self.path})
        head = {"id": "chatcmpl-1", "created": 0, "model": body["model"]}
        usage = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
        n = int(body.get("n") or 1)
        if not body.get("stream"):
            choices = [{"index": i, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": ANSWER}} for i in range(n)]
            self._send("application/json", json.dumps(
                {**head, "object": "chat.completion", "choices": choices, "usage": usage}))
            return
        chunks = [{"index": i, "delta": delta, "finish_reason": finish} for i in range(n)
                  for delta, finish in (({"role": "assistant", "content": ANSWER}, None),
                                        ({}, "stop"))]
        events = [{**head, "object": "chat.completion.chunk", "choices": [c]} for c in chunks]
        events.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        self._send("text/event-stream",
                   "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n")

    def _send(self, kind: str, text: str) -> None:
        data = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[ChatServer]:
    srv = ChatServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Commands run in a folder of their own, as from the clone's root."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    for name in ("PONDER_OPENAI_BASE_URL", "PONDER_OPENAI_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def console_commands(text: str) -> list[list[str]]:
    return [shlex.split(line[2:], comments=True)
            for block in re.findall(r"^```console\n(.*?)^```", text, flags=re.S | re.M)
            for line in block.splitlines() if line.startswith("$ ")]


def run_ponder(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*args, "--json", "--db", "memory://"], env=env)
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["status"] == "succeeded", (doc, result.stderr)
    return doc  # type: ignore[no-any-return]


def on_server(config: Path, server: ChatServer, into: Path) -> tuple[Path, dict[str, Any]]:
    """The model config, served by `server` instead of the address it names."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["base_url"] = server.base_url
    copy = into / config.name
    copy.write_text(yaml.safe_dump(data), encoding="utf-8")
    return copy, data


def test_every_model_config_is_shown_in_the_readme_and_runs_as_its_header_says(
        server: ChatServer, folder: Path) -> None:
    assert [p.name for p in MODELS] == ["llama_cpp_server.yaml", "openai_compatible.yaml",
                                        "vllm_server.yaml"]
    readme = console_commands(section("Your own model server"))
    for config in MODELS:
        rel = f"examples/models/{config.name}"
        header = [shlex.split(line.lstrip("# ")) for line in
                  config.read_text(encoding="utf-8").split("\nbackend:", 1)[0].splitlines()
                  if line.lstrip("# ").startswith("ponder run ")]
        command = ["ponder", "run", "examples/quickstart.yaml", "--model", f"default={rel}"]
        assert header == [command], (config.name, header)
        assert command in readme, config.name
        copy, data = on_server(config, server, folder)
        before = len(server.bodies)
        doc = run_ponder(["run", "examples/quickstart.yaml", "--model", f"default={copy}"])
        assert doc["output"] == {"answer": ANSWER, "total_legs": 36}
        bodies = server.bodies[before:]
        assert len(bodies) == 4 and {b["model"] for b in bodies} == {data["model"]}
        assert {b["path"] for b in bodies} == {"/v1/chat/completions"}
        for step in doc["steps"]:
            assert step["kind"] == "tool" or step["usage"]["completion_tokens"] == 3, step
        if data["options"].get("server") == "vllm":  # priorities and request ids are sent
            assert all(isinstance(b["priority"], int) and b["request_id"] for b in bodies)
        else:
            assert not any("priority" in b for b in bodies)
        for key, value in data["options"].get("extra_body", {}).items():
            assert all(b[key] == value for b in bodies), (config.name, key)


def test_a_json_schema_goes_as_each_config_says(server: ChatServer, folder: Path) -> None:
    """llama-cpp-python's server takes `json_object` only; vLLM's, SGLang's and OpenAI's
    `json_schema`."""
    wanted = {"llama_cpp_server.yaml": "json_object", "openai_compatible.yaml": "json_schema",
              "vllm_server.yaml": "json_schema"}
    for config in MODELS:
        copy, _ = on_server(config, server, folder)
        wf = Workflow("person", models={"default": yaml.safe_load(copy.read_text())})
        wf.llm("p", prompt="Name a person.", max_tokens=16,
               output_schema={"type": "object"})
        before = len(server.bodies)
        wf.run_sync()  # ANSWER is not JSON: the step fails; what was sent is the point
        sent = server.bodies[before]["response_format"]
        assert sent["type"] == wanted[config.name], (config.name, sent)


def test_the_readme_command_without_a_file_runs(server: ChatServer, folder: Path) -> None:
    (command,) = [c for c in console_commands(section("Your own model server"))
                  if c[0].startswith("PONDER_OPENAI_BASE_URL=")]
    env = dict(c.split("=", 1) for c in command[:2])
    assert set(env) == {"PONDER_OPENAI_BASE_URL", "PONDER_OPENAI_MODEL"}
    assert command[2:4] == ["ponder", "run"]
    env["PONDER_OPENAI_BASE_URL"] = server.base_url
    doc = run_ponder(command[3:], env=env)
    assert doc["output"]["answer"] == ANSWER
    assert {b["model"] for b in server.bodies} == {env["PONDER_OPENAI_MODEL"]}


def test_the_readme_models_section_runs(server: ChatServer, folder: Path) -> None:
    (block,) = re.findall(r"^```yaml\n(.*?)^```", section("Your own model server"),
                          flags=re.S | re.M)
    models = yaml.safe_load(block)["models"]
    models["default"]["base_url"] = server.base_url
    spec = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text(encoding="utf-8"))
    spec["models"] = models
    (folder / "wf.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    doc = run_ponder(["run", "wf.yaml"])
    assert doc["output"]["answer"] == ANSWER
    assert all("priority" in b for b in server.bodies)  # `server: vllm`
