"""Ray: tool steps as Ray tasks, and a pool of Ray actors running simulated engines.

The scenario tests share one local Ray instance (CPU only; it takes a few seconds to
start) and are marked ``slow``. They are skipped without the ``ray`` extra.
"""

from __future__ import annotations

import functools
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from executors.engines import PoolBackend, RayEngineBackend, RayToolExecutor, connect_ray
from executors.engines.pool import is_engine_fault
from executors.engines.ray import EngineActor, _check_reachable
from orchestrator.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    is_retryable,
)
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.runtime.registry import import_callable
from orchestrator.sdk import Workflow
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import FullServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Ray answers from its own threads: these tests need the real clock."""
    return "asyncio"


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="needs the `ray` extra")
    if not ray.is_initialized():
        connect_ray(None, num_cpus=2, include_dashboard=False)
    # a local instance started by connect_ray listens on the loopback interface only
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    yield ray
    ray.shutdown()


def square(x: int) -> int:
    return x * x


async def add_async(a: int, b: int) -> int:
    await anyio.lowlevel.checkpoint()
    return a + b


def explode() -> None:
    raise ValueError("boom")


def clamp(x: int, lo: int = 0, /, hi: int = 10) -> int:
    return max(lo, min(x, hi))


def _sync_wrapper(fn: Any) -> Any:
    """A decorator as users write one: a plain function returning ``fn``'s coroutine."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


@_sync_wrapper
async def wrapped_double(x: int) -> int:
    await anyio.lowlevel.checkpoint()
    return 2 * x


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str broke")


def unprintable() -> None:
    raise Unprintable()


def pair_set() -> set[int]:
    return {2, 1}


def infinite() -> float:
    return float("inf")


@pytest.mark.slow
async def test_tool_steps_run_as_ray_tasks(ray_local: Any) -> None:
    wf = Workflow("ray-tools")
    wf.register_executor("tool", RayToolExecutor())
    wf.tool("a", square, x=4)
    wf.tool("b", add_async, a="${steps.a.output}", b=2)
    wf.tool("c", square, x="${steps.b.output}")
    result = await wf.run()
    assert result.ok, result.error
    assert result.output == 324

    failing = Workflow("ray-fail")
    failing.register_executor("tool", RayToolExecutor())
    failing.tool("x", explode)
    result = await failing.run()
    assert result.status == "failed"
    assert "ValueError: boom" in (result.error or "")

    # outputs become JSON as on the local tool executor: a set a list, infinity an error
    shapes = Workflow("ray-outputs")
    shapes.register_executor("tool", RayToolExecutor())
    shapes.tool("s", pair_set)
    shapes.tool("inf", infinite)
    result = await shapes.run()
    steps = {s.id: s for s in result.steps}
    assert steps["s"].output == [1, 2]
    assert steps["inf"].status == "failed"
    assert "returned a value that is not JSON" in (steps["inf"].error or "")


@pytest.mark.slow
async def test_ray_tool_tasks_call_tools_as_the_local_executor_does(ray_local: Any) -> None:
    """Positional-only parameters are given by position, an async tool behind a sync
    decorator is awaited, and an exception whose str() raises still names its tool, as
    on the local tool executor. The Ray task called fn(**args): the first two failed
    ('positional-only arguments passed as keyword arguments', 'not JSON (coroutine')."""
    wf = Workflow("ray-calls")
    wf.register_executor("tool", RayToolExecutor())
    wf.tool("c", clamp, x=-5, lo=-2)
    wf.tool("w", wrapped_double, x="${steps.c.output}")
    wf.tool("u", unprintable)
    result = await wf.run()
    steps = {s.id: (s.output, s.error) for s in result.steps}
    assert steps["c"] == (-2, None)
    assert steps["w"] == (-4, None)
    assert steps["u"][1] == ("tool 'unprintable' raised Unprintable: (its message cannot be "
                             "shown: str() raised RuntimeError)")


@pytest.mark.slow
async def test_a_pool_of_ray_actors_survives_a_dead_actor(ray_local: Any) -> None:
    engine = {"backend": "sim-engine", "model": "llama-3-8b", "options": {"time_scale": 1.0}}
    wf = Workflow("ray-pool", models={"default": {"backend": "pool", "model": "m", "options": {
        "shared": False, "routing": "least_loaded",
        "members": [{"backend": "ray-engine", "name": "actor", "replicas": 2,
                     "options": {"engine": engine}}]}}})
    config = ModelConfig.model_validate(wf.spec.models["default"].model_dump())
    pool = PoolBackend(config)
    wf.register_backend("pool", lambda _: pool)
    for i in range(6):
        wf.llm(f"q{i}", prompt=f"Question {i}", max_tokens=200)
    await pool.complete(LLMRequest(messages=[{"role": "user", "content": "warm up"}]))
    first_actor = pool.members[0].backend._actor  # type: ignore[attr-defined]

    async def kill_first_actor() -> None:
        await anyio.sleep(0.5)  # each call decodes for about 1.4 s
        ray_local.kill(first_actor)

    async with anyio.create_task_group() as tg:
        tg.start_soon(kill_first_actor)
        result = await wf.run()
    assert result.ok, result.error
    assert len(result.output) == 6
    assert pool.stats()["actor.0"].ejections == 1


@pytest.mark.slow
async def test_an_engine_that_cannot_start_in_its_actor_fails_once_in_one_line(
        ray_local: Any) -> None:
    bad = RayEngineBackend(ModelConfig(backend="ray-engine", options={"engine": {
        "backend": "sim-engine", "model": "llama-3-8b", "options": {"kv_blocks": -1}}}))
    with pytest.raises(ConfigError) as info:
        await bad.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}]))
    message = str(info.value)
    assert message.startswith("ray:sim-engine:llama-3-8b: the engine could not start in its "
                              "Ray actor: ConfigError: ")
    assert "kv_blocks" in message
    assert "\n" not in message and "Traceback" not in message and "ActorDied" not in message
    assert not is_retryable(info.value)
    assert bad._actor is None  # the failed actor was stopped
    with pytest.raises(ConfigError, match="could not start"):  # at once, no new actor
        await bad.complete(LLMRequest(messages=[{"role": "user", "content": "again"}]))
    assert not await bad.health()


@pytest.mark.slow
async def test_an_engine_no_node_can_hold_fails_at_once_instead_of_waiting(
        ray_local: Any) -> None:
    # the local instance has no GPU: Ray would keep the actor pending, and the call
    # waiting, for ever
    vllm = RayEngineBackend(ModelConfig(backend="ray-engine", options={"engine": {
        "backend": "vllm", "model": "meta-llama/Llama-3.1-8B-Instruct"}}))
    with anyio.fail_after(30), pytest.raises(ConfigError) as info:
        await vllm.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}]))
    assert str(info.value) == (
        "ray:vllm:meta-llama/Llama-3.1-8B-Instruct: no node of the Ray cluster can hold "
        "the engine's actor: it needs 1 GPU(s) and 0 CPU(s) on one node, and its nodes have "
        "at most 0 GPU(s) and 2 CPU(s); set the ray-engine's `num_gpus: 0` for an engine "
        "that needs no GPU, or join a cluster with GPU nodes (`address:`); on a cluster "
        "whose autoscaler adds such nodes on demand, set `autoscaling: true`")
    assert vllm._actor is None and not await vllm.health()


@pytest.mark.slow
async def test_on_an_autoscaling_cluster_the_engine_waits_for_a_node(ray_local: Any) -> None:
    # no node can hold it now; an autoscaler might add one: wait (up to start_timeout_s)
    vllm = RayEngineBackend(ModelConfig(backend="ray-engine", options={
        "engine": {"backend": "vllm", "model": "m"}, "autoscaling": True,
        "start_timeout_s": 2}))
    with anyio.fail_after(30), pytest.raises(BackendError, match="did not start within 2s"):
        await vllm.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}]))


@pytest.mark.slow
async def test_the_tools_of_two_workflows_each_with_a_tools_py_run_on_ray(
        ray_local: Any, tmp_path: Path) -> None:
    # each workflow's folder is on sys.path only while its module is imported, and the
    # second module is imported under an alias: Ray's workers can import neither by name
    for folder, value in (("one", 1), ("two", 2)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"ray_helper_{folder}.py").write_text(f"BASE = {value}\n")
        (tmp_path / folder / "ponder_ray_tools.py").write_text(
            f"from ray_helper_{folder} import BASE\n\n"
            "def answer(x: int) -> int:\n    return BASE * 100 + x\n")
    one = import_callable("ponder_ray_tools:answer", tmp_path / "one")
    two = import_callable("ponder_ray_tools:answer", tmp_path / "two")
    assert two.__module__ != "ponder_ray_tools"  # the alias
    outputs = []
    for fn in (one, two):
        wf = Workflow("ray-beside")
        wf.register_executor("tool", RayToolExecutor())
        wf.tool("a", fn, x=7)
        result = await wf.run()
        assert result.ok, result.error
        outputs.append(result.output)
    assert outputs == [107, 207]


@pytest.mark.slow
async def test_an_engine_whose_resources_others_hold_times_out_and_the_pool_moves_on(
        ray_local: Any) -> None:
    engine = {"backend": "sim-engine", "model": "llama-3-8b", "options": {"time_scale": 0}}
    # each actor wants both CPUs of the local instance: the second can never start
    # while the first lives
    pool = PoolBackend(ModelConfig(backend="pool", model="m", options={
        "shared": False, "routing": "least_loaded", "members": [
            {"backend": "ray-engine", "name": "first", "options": {
                "engine": engine, "num_cpus": 2, "start_timeout_s": 60}},
            {"backend": "ray-engine", "name": "second", "options": {
                "engine": engine, "num_cpus": 2, "start_timeout_s": 2}}]}))
    try:
        with anyio.fail_after(90):
            await pool.complete(LLMRequest(messages=[{"role": "user", "content": "warm"}]))
            async with anyio.create_task_group() as tg:  # one call for each engine
                for i in range(2):
                    tg.start_soon(pool.complete, LLMRequest(
                        messages=[{"role": "user", "content": f"q{i}"}], max_tokens=3))
        stats = pool.stats()
        assert (stats["first"].completed, stats["second"].failed) == (3, 1)
        assert pool.members[1].last_error.startswith(
            "BackendError: ray:sim-engine:llama-3-8b: the engine's Ray actor did not start "
            "within 2s (start_timeout_s); it needs 0 GPU(s) and 2 CPU(s), and the cluster "
            "has 0 GPU(s) and 0 CPU(s) free")
    finally:
        await pool.aclose()


@pytest.mark.parametrize(("engine", "options", "gpus"), [
    ({"backend": "vllm", "model": "m"}, {}, 1.0),
    ({"backend": "vllm", "model": "m"}, {"num_gpus": 0}, 0.0),
    ({"backend": "vllm", "model": "m"}, {"num_gpus": 2}, 2.0),
    ({"backend": "sim-engine"}, {}, 0.0),
])
def test_a_vllm_engine_reserves_a_gpu_unless_told_otherwise(
        engine: dict[str, Any], options: dict[str, Any], gpus: float) -> None:
    backend = RayEngineBackend(ModelConfig(backend="ray-engine",
                                           options={"engine": engine, **options}))
    assert backend.num_gpus == gpus


def test_an_unreachable_cluster_is_reported_at_once() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendUnavailable, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        _check_reachable(f"127.0.0.1:{port}", 1.0)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        _check_reachable("nowhere", 1.0)


def _one_server(answer: bytes | None) -> tuple[int, threading.Thread]:
    """A server on 127.0.0.1 that takes one connection, reads what comes, then writes
    ``answer`` and closes (None: stays silent until the client leaves)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve() -> None:
        with server, server.accept()[0] as conn:
            conn.settimeout(5)
            try:
                conn.recv(1024)
                if answer is not None:
                    conn.sendall(answer)
                else:
                    conn.recv(1024)  # until the client closes
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


@pytest.mark.parametrize("answer", [
    None,  # takes the connection and says nothing (a firewall, a proxy)
    b"",  # closes at once
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",  # an HTTP/1 server
    b"-ERR unknown command 'PRI'\r\n",  # Redis on Ray's old default port
])
def test_a_server_that_is_not_ray_is_reported_in_seconds(answer: bytes | None) -> None:
    """It was taken for a cluster: Ray then retried its calls to it for over a minute."""
    port, thread = _one_server(answer)
    with pytest.raises(BackendUnavailable, match=f"something answers at 127.0.0.1:{port}, "
                       "but not a Ray cluster"):
        _check_reachable(f"127.0.0.1:{port}", 1.0)
    thread.join(5)


def test_a_grpc_server_passes_and_tls_skips_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame
    port, thread = _one_server(settings)
    _check_reachable(f"ray://127.0.0.1:{port}", 1.0)
    thread.join(5)
    monkeypatch.setenv("RAY_USE_TLS", "1")
    port, thread = _one_server(b"")
    _check_reachable(f"127.0.0.1:{port}", 1.0)
    thread.join(5)


def test_the_check_takes_a_real_clusters_address(ray_local: Any) -> None:
    _check_reachable(ray_local.get_runtime_context().gcs_address, 2.0)


def test_without_ray_the_message_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"ponder\[ray\]"):
        connect_ray("127.0.0.1:1")


class _Refusing:
    """An engine that answers every call with HTTP 503 and a ``Retry-After``."""

    async def complete(self, request: LLMRequest) -> Any:
        raise BackendHTTPError("the queue is full", status=503, retry_after_s=7.5)


class _LocalActor:
    """An :class:`EngineActor` called in this process, as its Ray handle is."""

    def __init__(self, body: EngineActor) -> None:
        self.complete = SimpleNamespace(remote=body.complete)


def _over_local_actor(engine: Any, monkeypatch: pytest.MonkeyPatch) -> RayEngineBackend:
    """A ray-engine backend whose actor, called in this process, runs ``engine``."""
    body = EngineActor(ModelConfig(backend="sim-engine", model="llama-3-8b").model_dump_json())
    body.backend = engine
    backend = RayEngineBackend(ModelConfig(backend="ray-engine", options={
        "engine": {"backend": "sim-engine", "model": "llama-3-8b"}}))
    fake_ray = SimpleNamespace(exceptions=SimpleNamespace(RayError=RuntimeError))

    async def started() -> tuple[Any, Any]:
        return fake_ray, _LocalActor(body)

    monkeypatch.setattr(backend, "_started", started)
    return backend


async def test_an_http_error_keeps_its_status_and_retry_after_across_the_actor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _over_local_actor(_Refusing(), monkeypatch)
    with pytest.raises(BackendHTTPError) as info:
        await backend.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}]))
    assert (info.value.status, info.value.retry_after_s) == (503, 7.5)
    assert "the queue is full" in str(info.value)


class _Rejecting:
    """An engine in process that refuses a prompt too long for its context, as vLLM's
    and llama.cpp's Python engines do: with ``ValueError``."""

    async def complete(self, request: LLMRequest) -> Any:
        raise ValueError("Requested tokens (4100) exceed context window of 2048")


async def test_a_request_the_engine_refuses_is_a_400_across_the_actor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a retryable BackendError: a pool would move it to every engine and take each
    out, though each would refuse it too."""
    backend = _over_local_actor(_Rejecting(), monkeypatch)
    with pytest.raises(BackendHTTPError) as info:
        await backend.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}]))
    assert info.value.status == 400
    assert "rejected the request: ValueError: Requested tokens (4100) exceed" in str(info.value)


@pytest.mark.slow
async def test_a_full_server_behind_a_ray_actor_keeps_its_retry_after(
        ray_local: Any) -> None:
    srv = FullServer(retry_after="4")
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    backend = RayEngineBackend(ModelConfig(backend="ray-engine", options={"engine": {
        "backend": "openai", "model": "m", "base_url": srv.url}}))
    try:
        with anyio.fail_after(60), pytest.raises(BackendHTTPError) as info:
            await backend.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}]))
        assert (info.value.status, info.value.retry_after_s) == (503, 4.0)
    finally:
        await backend.aclose()
        srv.shutdown()
        srv.server_close()


class _Raising:
    """An engine in process that fails every call with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def complete(self, request: LLMRequest) -> Any:
        raise self.error


@pytest.mark.parametrize(("error", "says"), [
    # a sampling parameter the engine cannot take: the request's fault, as a ValueError
    (TypeError("unexpected keyword 'temperatur'"), "TypeError: unexpected keyword"),
    # a schema the engine cannot parse (json's JSONDecodeError, a ValueError): judged in
    # the actor, where its class is known, as in process; by its name alone it was the
    # engine's fault, and a pool moved the call to each other engine
    (json.JSONDecodeError("bad schema", "{", 0), "JSONDecodeError: bad schema"),
], ids=["TypeError", "JSONDecodeError"])
async def test_a_request_error_of_the_engine_is_a_400_across_the_actor(
        monkeypatch: pytest.MonkeyPatch, error: Exception, says: str) -> None:
    backend = _over_local_actor(_Raising(error), monkeypatch)
    with pytest.raises(BackendHTTPError) as info:
        await backend.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}]))
    assert info.value.status == 400
    assert f"rejected the request: {says}" in str(info.value)


async def test_another_error_of_the_engine_stays_its_fault_across_the_actor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A RuntimeError is the engine's fault: a pool moves the call to another engine."""
    backend = _over_local_actor(_Raising(RuntimeError("CUDA error")), monkeypatch)
    with pytest.raises(BackendError, match="CUDA error") as info:
        await backend.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}]))
    assert type(info.value) is BackendError and is_engine_fault(info.value)
