"""Fixtures of the LLM backend tests: the bundled GGUF, a real llama.cpp server, fakes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigError
from orchestrator.runtime.contracts import LLMBackend
from orchestrator.runtime.events import Event
from orchestrator.runtime.registry import Registry
from orchestrator.spec.models import ModelConfig

SERVER_URL_ENV = "PONDER_LLAMA_SERVER_URL"
SERVER_START_TIMEOUT_S = 90.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    """A port on 127.0.0.1 with nothing listening: connections to it are refused."""
    return free_port()


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """The bundled SmolLM2 GGUF; skips without the ``local`` extra."""
    pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")
    from executors.llm.local import bundled_model_path

    try:
        return bundled_model_path()
    except ConfigError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def llama_server_url(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``.../v1``) of a llama.cpp OpenAI-compatible server.

    ``$PONDER_LLAMA_SERVER_URL`` when set; otherwise ``python -m llama_cpp.server``
    on the bundled model, started here on a free port and stopped at the end.
    """
    given = os.environ.get(SERVER_URL_ENV)
    if given:
        yield given.rstrip("/")
        return
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    with start_llama_server(gguf_path, log_path) as (_, url):
        yield url


@pytest.fixture
def own_llama_server(gguf_path: Path, tmp_path: Path
                     ) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A llama.cpp server of this test alone (its process and base URL), which the test
    may kill; stopped at the end if it still runs."""
    with start_llama_server(gguf_path, tmp_path / "server.log") as started:
        yield started


@contextmanager
def start_llama_server(gguf_path: Path, log_path: Path
                       ) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``python -m llama_cpp.server`` on the bundled model, on a free port of 127.0.0.1:
    its process and base URL once it answers; stopped on exit. Skips without the
    server's extras."""
    try:
        import llama_cpp.server.app  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"llama_cpp.server needs its extras ({exc.name} is missing)")
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path),
        "--n_ctx", "1024", "--port", str(port), "--host", "127.0.0.1",
        "--n_threads", "1",  # a loaded 2-core CI machine decodes faster on one thread
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_ready(url, process, log_path)
        yield process, url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)  # a sync fixture polling a subprocess; no event loop here
    raise RuntimeError(f"llama_cpp.server did not answer on {url} within {SERVER_START_TIMEOUT_S}s")


@dataclass
class FakeContext:
    """A minimal :class:`~orchestrator.runtime.contracts.ExecContext` over given backends."""

    backends: dict[str, LLMBackend]
    models: dict[str, ModelConfig]
    run_id: str = "run-test"
    base_dir: Path = Path(".")
    registry: Registry = field(default_factory=Registry)
    hooks: Sequence[Any] = ()
    depth: int = 0
    emitted: list[Event] = field(default_factory=list)

    def backend(self, model: str) -> LLMBackend:
        try:
            return self.backends[model]
        except KeyError:
            raise ConfigError(f"unknown model {model!r}") from None

    def model_config(self, model: str) -> ModelConfig:
        try:
            return self.models[model]
        except KeyError:
            raise ConfigError(f"unknown model {model!r}") from None

    async def emit(self, events: Sequence[Event]) -> None:
        self.emitted.extend(events)


@pytest.fixture
def make_context() -> Any:
    """A factory of :class:`FakeContext`: ``make_context({"default": backend}, {...})``."""

    def make(backends: dict[str, LLMBackend], models: dict[str, ModelConfig]) -> FakeContext:
        return FakeContext(backends, models)

    return make
