"""The tool executor: validate arguments, call the registered callable."""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import queue
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from orchestrator.errors import PonderError, ToolError
from orchestrator.runtime.contracts import ExecContext, Result, Task
from orchestrator.spec.models import ModelConfig


class ToolExecutor:
    """Runs `tool` steps. Sync callables run in a thread of their own, off the event loop."""

    registry_tool_args = True  # validation checks steps' args against the registry

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        spec = ctx.registry.get_tool(task.inputs["tool"])
        args = spec.validate(task.inputs.get("args") or {}, written_args(task))
        # in a thread of its own, a tool's KeyboardInterrupt is its own too: no Ctrl-C there
        own: tuple[type[BaseException], ...] = (
            (Exception, SystemExit) if spec.is_async else (Exception, SystemExit, KeyboardInterrupt))
        call = call_of(spec.fn, args)
        try:
            if spec.is_async:
                value = await call()
            else:
                value = await _call_in_thread(call)
                if inspect.isawaitable(value):
                    # an async tool that does not look it: a decorator's sync wrapper, an
                    # object with an async __call__. It runs on the loop, as async tools do
                    own = (Exception, SystemExit)
                    value = await value
        except PonderError:
            raise
        except own as exc:  # a tool's own exception is the step's error
            raise ToolError(f"tool {spec.name!r} raised {type(exc).__name__}: {exception_text(exc)}",
                            step_id=task.step_id) from exc
        return Result(output=tool_output(spec.name, value, task.step_id), meta={"tool": spec.name})

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        return 0.01


def written_args(task: Task) -> dict[str, Any] | None:
    """A tool step's arguments as written, references unresolved (for the message of a
    bad argument that a reference gave); None where the task carries none."""
    written = getattr(task.step, "args", None)
    return written if isinstance(written, dict) else None


def call_of(fn: Callable[..., Any], args: dict[str, Any]) -> Callable[[], Any]:
    """``fn`` called with ``args`` (validated: every parameter is there), those of its
    positional-only parameters (``def f(x, /)``) given by position, as Python requires."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # (its spec was built from this signature)
        return functools.partial(fn, **args)
    named = dict(args)
    positional = []
    for name, param in params.items():  # (positional-only ones come first)
        if param.kind is not param.POSITIONAL_ONLY or name not in named:
            break
        positional.append(named.pop(name))
    return functools.partial(fn, *positional, **named)


def exception_text(exc: BaseException) -> str:
    """``str(exc)``, or what went wrong in it: an exception's ``__str__`` is the tool's
    code, and may fail too."""
    try:
        return str(exc)
    except Exception as inner:
        return f"(its message cannot be shown: str() raised {type(inner).__name__})"


async def _call_in_thread(fn: Callable[[], Any]) -> Any:
    """Call ``fn`` in a new daemon thread and return what it returns (or raise what it
    raises, ``SystemExit`` and ``KeyboardInterrupt`` included: a thread gets no signals).

    Python cannot stop a thread. Where ``anyio.to_thread.run_sync`` waits for the call
    whatever happens (a step's ``timeout_s`` and Ctrl-C had no effect on a tool that
    hangs), a cancelled wait here returns at once and leaves the thread behind; being a
    daemon, it does not keep the process alive once the run is over either.
    """
    token = anyio.lowlevel.current_token()
    send, receive = anyio.create_memory_object_stream[tuple[bool, Any]](1)
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome: tuple[bool, Any] = (True, context.run(fn))
        except BaseException as exc:  # handed to the waiting task
            outcome = (False, exc)
        try:
            anyio.from_thread.run_sync(send.send_nowait, outcome, token=token)
        except Exception:  # nobody waits any more (timed out, cancelled, the loop is gone)
            pass

    with send, receive:
        _WORKERS.submit(target)
        ok, value = await receive.receive()
    if ok:
        return value
    raise value


class _Worker(threading.Thread):
    """A daemon thread that runs jobs of :class:`_Workers` until idle for ``idle_s``."""

    def __init__(self, pool: _Workers) -> None:
        super().__init__(name="ponder tool", daemon=True)
        self.pool = pool
        self.jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=self.pool.idle_s)
            except queue.Empty:
                with self.pool.lock:
                    if self in self.pool.idle:  # else a job was just handed to it: take it
                        self.pool.idle.remove(self)
                        return
                continue
            job()
            with self.pool.lock:
                self.pool.idle.append(self)


class _Workers:
    """Daemon threads for sync tools, reused (a thread per call cost 0.2 ms more per
    tool step). A call that is abandoned (timed out, cancelled) keeps its thread; the
    next call gets another. Unlike ``anyio.to_thread``'s workers, these never keep the
    process alive at exit."""

    def __init__(self, idle_s: float = 30.0) -> None:
        self.idle_s = idle_s
        self.lock = threading.Lock()
        self.idle: list[_Worker] = []

    def submit(self, job: Callable[[], None]) -> None:
        with self.lock:
            worker = self.idle.pop() if self.idle else None
        if worker is None:
            worker = _Worker(self)
            worker.start()
        worker.jobs.put(job)


_WORKERS = _Workers()


def tool_output(name: str, value: Any, step_id: str | None = None) -> Any:
    """A tool's return value as JSON data: pydantic models, dataclasses, tuples, sets and
    dates as pydantic's JSON mode writes them.

    A step's output is stored in the run's trace and may be printed as JSON, so a value
    JSON cannot hold (an arbitrary object, a generator, bytes that are not UTF-8, a
    circular list, infinity or NaN) fails the step here, not the run when it is stored.

    :raises ToolError: naming the tool and what is wrong with the value.
    """
    try:
        data = to_jsonable_python(value)
        json.dumps(data, allow_nan=False)  # infinity/NaN: not JSON, whatever Python allows
    except (PydanticSerializationError, ValueError, TypeError, RecursionError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ToolError(f"tool {name!r} returned a value that is not JSON "
                        f"({type(value).__name__}: {detail}); return strings, numbers, "
                        "booleans, None, lists and dicts", step_id=step_id) from None
    return data
