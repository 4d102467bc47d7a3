"""Steps on a Ray cluster: tool steps as Ray tasks, LLM engines as Ray actors.

Needs the ``ray`` extra, imported only when used. :func:`connect_ray` joins the cluster
at ``address`` (``ray.init(address=...)``; ``$PONDER_RAY_ADDRESS`` when not given) or,
with no address, starts a local one that listens on 127.0.0.1 only. An address that
does not answer fails at once with a message naming it, instead of Ray's minute of
retries.

- :class:`RayToolExecutor` runs ``tool`` steps as Ray tasks: register it with
  ``wf.register_executor("tool", RayToolExecutor(address))``. The tool function is
  shipped to the worker (cloudpickle): by name where the worker can import its module,
  else (a workflow's ``tools.py``, also under the alias a second one gets) by value,
  with the modules beside it; async tools run in an event loop there.
  Cancelling the step cancels the task.
- :class:`RayEngineBackend` (backend ``ray-engine``) is one LLM engine inside a Ray
  actor: any backend (``sim-engine``, ``vllm``...) built from ``options.engine`` in the
  actor's process, which Ray places on a node with ``num_gpus`` free GPUs. Pools take
  them as members, one per GPU: ``{backend: ray-engine, replicas: 4, options: {...}}``.
  An engine backend registered with ``Workflow.register_backend`` travels to the actor
  by its import path (:meth:`RayEngineBackend.with_registry`).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import anyio
from pydantic import Field, ValidationError

from executors.engines.pool import PoolBusy, engine_config_problems, registry_or_default
from executors.llm._common import BackendOptions, parse_options
from executors.llm._request_errors import is_request_error
from executors.tool import call_of, exception_text, tool_output, written_args
from orchestrator._extras import extra_missing, install_hint, installed
from orchestrator.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    OutputSchemaError,
    PonderError,
    StepTimeout,
    ToolError,
)
from orchestrator.runtime.contracts import ExecContext, LLMChunk, LLMRequest, LLMResponse, Result
from orchestrator.runtime.contracts import Task as StepTask
from orchestrator.runtime.registry import ConfigProblem
from orchestrator.spec.models import ModelConfig
from orchestrator.spec.options import OptionProblem, option_problems

if TYPE_CHECKING:
    from orchestrator.runtime.registry import Registry

ADDRESS_ENV = "PONDER_RAY_ADDRESS"
_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_ERRORS: dict[str, type[PonderError]] = {
    cls.__name__: cls for cls in (BackendError, BackendUnavailable, StepTimeout, ConfigError,
                                  OutputSchemaError, ToolError)
}


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"Ray is not installed; install the extra `ray`: "
                          f"{install_hint('ray')} ({exc})") from None
    return ray


def connect_ray(address: str | None = None, *, connect_timeout_s: float = 5.0,
                **init_kwargs: Any) -> Any:
    """Join the Ray cluster at ``address`` (or ``$PONDER_RAY_ADDRESS``), else start a local one.

    Does nothing when Ray is already initialised in this process.

    :returns: the ``ray`` module.
    :raises ConfigError: without Ray installed.
    :raises BackendUnavailable: when the cluster does not answer at ``address``.
    """
    address = address or os.environ.get(ADDRESS_ENV) or None
    loaded = sys.modules.get("ray")
    if address in (None, "local") and not (loaded is not None and loaded.is_initialized()):
        _loopback_only()
    ray = _ray()
    if ray.is_initialized():
        return ray
    if address not in (None, "auto", "local"):
        _check_reachable(address, connect_timeout_s)
    try:
        ray.init(address=address, log_to_driver=False, **init_kwargs)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        raise BackendUnavailable(f"cannot connect to the Ray cluster at {address}: {exc}") from exc
    return ray


def _loopback_only() -> None:
    """Make a local instance started by this process listen on 127.0.0.1 only.

    On Linux Ray takes the machine's outward address as the node's and its servers
    listen on every interface; with its multi-node mode off (the default on macOS and
    Windows) it uses the loopback address. Nothing else needs to reach an instance that
    lives and dies with this process. ``$RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1`` keeps
    Ray's behaviour.
    """
    os.environ.setdefault(_CLUSTER_ENV, "0")  # read by Ray at import, here and in workers
    if os.environ[_CLUSTER_ENV] != "0":
        return
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None and hasattr(constants, "ENABLE_RAY_CLUSTER"):
        # Ray was imported before: it reads the constant at call time
        setattr(constants, "ENABLE_RAY_CLUSTER", False)  # noqa: B010


def _check_reachable(address: str, timeout_s: float) -> None:
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address {address!r} must look like HOST:PORT or ray://HOST:PORT")
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout_s)
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot reach the Ray cluster at {address}: {exc}; start it with "
            f"`ray start --head --port {port}` or fix the address") from None
    with sock:
        speaks = _tls() or _speaks_grpc(sock)
    if not speaks:
        # Ray would retry its gRPC calls to it for a minute before giving up
        raise BackendUnavailable(
            f"something answers at {address}, but not a Ray cluster (no gRPC server): "
            f"give the head node's GCS address (`ray start --head` prints it; port 6379 "
            f"by default) or its Ray Client address (ray://HOST:10001)")


#: a client's HTTP/2 connection preface and an empty SETTINGS frame (RFC 9113, 3.4)
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_H2_SETTINGS = 0x4


def _speaks_grpc(sock: socket.socket) -> bool:
    """Whether the server on ``sock`` speaks HTTP/2, as Ray's GCS and Ray Client servers
    (gRPC) do: its first frame must be SETTINGS. A server of anything else (a proxy that
    takes every connection, a database on the port) closes, answers otherwise or stays
    silent until the socket's timeout."""
    head = b""
    try:
        sock.sendall(_H2_PREFACE)
        while len(head) < 9:
            chunk = sock.recv(9 - len(head))
            if not chunk:
                return False
            head += chunk
    except OSError:  # reset, or silent until the timeout
        return False
    return head[3] == _H2_SETTINGS


def _tls() -> bool:
    """Whether Ray talks TLS here (``$RAY_USE_TLS``): then the servers answer a plain
    HTTP/2 preface with nothing useful, and only the connection is checked."""
    return os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")


#: modules already made to travel by value (see :func:`_ship_by_value`)
_BY_VALUE: set[str] = set()


def _ship_by_value(ray: Any, fn: Any) -> None:
    """Make a tool's module, and the modules beside it, travel with the function
    (cloudpickle by value) where a Ray worker could not import them by name: a
    workflow's ``tools.py`` is imported from the workflow's folder, which is on
    ``sys.path`` only while it is imported, and under an alias of its own
    (``tools__ponder_<hash>``) when another ``tools`` came first (two workflows, each
    with a ``tools.py``). A module this process finds by name travels by name, as before."""
    name = getattr(fn, "__module__", None)
    if not isinstance(name, str) or name in _BY_VALUE:
        return
    _BY_VALUE.add(name)
    top = sys.modules.get(name.split(".")[0])
    if top is None or _importable_by_name(top):
        return
    folder = Path(top.__file__).resolve().parent  # type: ignore[arg-type]
    if top.__file__ and Path(top.__file__).name == "__init__.py":
        folder = folder.parent
    beside = [m for m in list(sys.modules.values())
              if m is top or (m is not None and "." not in getattr(m, "__name__", ".")
                              and _in_folder(m, folder) and not _importable_by_name(m))]
    for module in beside:
        ray.cloudpickle.register_pickle_by_value(module)


def _importable_by_name(module: Any) -> bool:
    """Whether importing a top-level module's name afresh (through the import system's
    finders, not from ``sys.modules``) finds its file; a module without a file (built
    in) counts as importable.

    Every finder of ``sys.meta_path`` is asked, as a new process (a Ray worker) would:
    an editable install (``pip install -e``) puts its packages there, on no folder of
    ``sys.path``, and Ponder's own modules were taken for ones no worker could import."""
    path = getattr(module, "__file__", None)
    if not path:
        return True
    spec = None
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(module.__name__, None)
        except (ImportError, ValueError):
            return False
        if spec is not None:
            break
    origin = spec.origin if spec is not None else None
    try:
        return origin is not None and Path(origin).resolve() == Path(path).resolve()
    except OSError:
        return False


def _in_folder(module: Any, folder: Path) -> bool:
    """Whether a module's file (a package's ``__init__.py``) lies directly in ``folder``."""
    path = getattr(module, "__file__", None)
    if not isinstance(path, str):
        return False
    try:
        file = Path(path).resolve()
    except OSError:
        return False
    home = file.parent.parent if file.name == "__init__.py" else file.parent
    return home == folder


def _call_tool(fn: Any, args: dict[str, Any], is_async: bool, name: str) -> Any:
    """Runs inside the Ray worker, calling ``fn`` as the local tool executor does: its
    positional-only parameters by position, and an awaitable that a sync-looking callable
    returns (a decorator's wrapper of an async tool) awaited. An exception whose ``str()``
    raises becomes the step's :class:`ToolError` here: Ray would report the ``str()``'s
    error instead, as if the tool had raised it."""
    try:
        value = call_of(fn, args)()
        if is_async or inspect.isawaitable(value):
            return asyncio.run(_awaited(value))
        return value
    except Exception as exc:
        try:
            str(exc)
        except Exception:
            raise ToolError(f"tool {name!r} raised {type(exc).__name__}: "
                            f"{exception_text(exc)}") from None
        raise


async def _awaited(value: Any) -> Any:
    return await value


class RayToolExecutor:
    """Runs ``tool`` steps as Ray tasks (see the module docstring).

    :param address: the cluster (``None``: ``$PONDER_RAY_ADDRESS`` or a local one).
    :param num_cpus: CPUs each task reserves.
    :param init_kwargs: more arguments for ``ray.init`` when this starts Ray.
    """

    registry_tool_args = True  # validation checks steps' args against the registry

    def __init__(self, address: str | None = None, *, num_cpus: float = 1.0,
                 **init_kwargs: Any) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.init_kwargs = init_kwargs
        self._remote: Any = None

    async def execute(self, task: StepTask, ctx: ExecContext) -> Result:
        """Run the step's tool as a Ray task.

        :raises ToolError: when the tool raises or its arguments do not validate.
        :raises BackendUnavailable: when the cluster or the worker is lost (retryable).
        """
        spec = ctx.registry.get_tool(task.inputs["tool"])
        args = spec.validate(task.inputs.get("args") or {}, written_args(task))
        ray = connect_ray(self.address, **self.init_kwargs)
        _ship_by_value(ray, spec.fn)
        if self._remote is None:
            self._remote = ray.remote(num_cpus=self.num_cpus, max_retries=0)(_call_tool)
        ref = self._remote.remote(spec.fn, args, spec.is_async, spec.name)
        try:
            value = await ref
        except anyio.get_cancelled_exc_class():
            ray.cancel(ref)
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, PonderError):
                raise cause from None
            raise ToolError(f"tool {spec.name!r} raised {type(cause).__name__}: "
                            f"{exception_text(cause)}",
                            step_id=task.step_id) from None
        except ray.exceptions.RayError as exc:
            raise BackendUnavailable(f"tool {spec.name!r}: the Ray task was lost: {exc}",
                                     step_id=task.step_id) from exc
        return Result(output=tool_output(spec.name, value, task.step_id),
                      meta={"tool": spec.name, "executor": "ray"})

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        return 0.05


class EngineActor:
    """The body of a Ray actor holding one LLM engine; errors come back as plain data.

    A backend that cannot be built does not kill the actor (Ray would answer every call
    with an ``ActorDiedError`` carrying the whole traceback): :meth:`ready` returns the
    error instead, once, and the caller stops the actor.
    """

    def __init__(self, config_json: str, factory_path: str | None = None) -> None:
        """:param factory_path: ``module:qualname`` of the engine's backend factory, for a
            backend the driver's registry serves other than the installed one (the SDK's
            ``register_backend``); None: the installed backend of the config's name."""
        from executors.engines.pool import default_resolve

        self.backend: Any = None
        self.start_error: tuple[str, str, None] | None = None
        try:
            config = ModelConfig.model_validate_json(config_json)
            factory = (default_resolve(config.backend) if factory_path is None
                       else _import_factory(config.backend, factory_path))
            self.backend = factory(config)
        except Exception as exc:
            self.start_error = (type(exc).__name__, str(exc), None)

    async def ready(self) -> tuple[str, str, None] | None:
        """None when the engine was built, else ``(error type, message, None)``."""
        return self.start_error

    async def complete(self, request: LLMRequest) -> tuple[str, Any]:
        if self.start_error is not None:
            return "error", self.start_error
        try:
            return "ok", await self.backend.complete(request)
        except Exception as exc:
            # an HTTP error's status and Retry-After (BackendHTTPError) travel with it, and
            # whether it is the request's fault (is_request_error), judged here, where the
            # error's class is known (a ValueError's subclass is one too)
            return "error", (type(exc).__name__, str(exc), getattr(exc, "status", None),
                             getattr(exc, "retry_after_s", None), is_request_error(exc))

    async def health(self) -> bool:
        if self.start_error is not None:
            return False
        health = getattr(self.backend, "health", None)
        return bool(await health()) if health is not None else True

    async def stats(self) -> dict[str, Any]:
        counters = getattr(self.backend, "counters", None)
        return dict(vars(counters)) if counters is not None and hasattr(counters, "__dict__") \
            else {f: getattr(counters, f) for f in getattr(counters, "__slots__", ())}

    async def aclose(self) -> None:
        if self.backend is not None:
            await self.backend.aclose()


def _import_factory(name: str, path: str) -> Any:
    """The backend factory at ``module:qualname``, imported in the actor's process.

    :raises ConfigError: naming the backend and the path when it does not import there.
    """
    module, _, qualname = path.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as exc:
        raise ConfigError(f"the backend {name!r} ({path}) does not import on the Ray "
                          f"worker: {type(exc).__name__}: {exc}") from None
    return found


def _factory_path(factory: Any) -> tuple[str | None, str]:
    """Where a Ray worker imports a backend factory from (``module:qualname``), and why
    not, when it cannot: a lambda, a class or function defined inside a function, one of
    a script run as ``__main__``, or of a module loaded from its file under another name
    (``(None, why)``)."""
    module = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None, (f"it is a {type(factory).__name__} object, not a class or function "
                      "of a module")
    if "<lambda>" in qualname:
        return None, "it is a lambda"
    if "<locals>" in qualname:
        return None, "it is defined inside a function"
    if module == "__main__":
        return None, "it is defined in the script run as __main__"
    loaded, top = sys.modules.get(module), sys.modules.get(module.split(".")[0])
    if loaded is None or top is None or not _importable_by_name(top):
        return None, f"its module {module!r} cannot be imported by that name"
    found: Any = loaded
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not factory:
        return None, f"{module}.{qualname} is another object"
    return f"{module}:{qualname}", ""


#: backends that need a GPU of their own: ``num_gpus`` defaults to 1 for them
GPU_BACKENDS = frozenset({"vllm"})


class RayEngineOptions(BackendOptions):
    """The ``options:`` of ``ray-engine`` (see :class:`RayEngineBackend`)."""

    engine: dict[str, Any] = Field(description="ModelConfig of the engine inside the actor.")
    address: str | None = None
    num_gpus: float | None = Field(None, ge=0)
    num_cpus: float = Field(0.0, ge=0)
    max_concurrency: int = Field(1000, ge=1)
    health_timeout_s: float = Field(10.0, gt=0)
    start_timeout_s: float = Field(300.0, gt=0)
    autoscaling: bool = False


class RayEngineBackend:
    """One LLM engine in a Ray actor.

    Options: ``engine`` (the ModelConfig mapping of the backend the actor runs, e.g.
    ``{backend: vllm, model: ..., options: {...}}``), ``address`` (the cluster),
    ``num_gpus`` (GPUs the actor reserves; default 1 for a ``vllm`` engine, else 0; 0
    may be given for a vLLM engine too), ``num_cpus``, ``max_concurrency`` (calls the
    actor runs at once), ``health_timeout_s``, ``start_timeout_s`` (how long the actor
    may wait for its resources and start), ``autoscaling`` (the cluster adds nodes on
    demand: an actor that no node up now can hold waits for one, up to
    ``start_timeout_s``, instead of failing at once).

    The actor starts on the first call. An engine that cannot start there fails the call
    with one line naming this engine and the cause: :class:`ConfigError` for a bad
    configuration, else :class:`BackendError`; neither is retried by the scheduler, and
    later calls fail the same way at once instead of starting another actor. So does an
    actor that no node of the cluster can hold (more GPUs or CPUs than any live node has:
    Ray would keep it pending for ever; :class:`ConfigError`) and one that has not
    started within ``start_timeout_s`` (the GPUs it needs are held by others:
    :class:`BackendError`). If a
    started actor dies, calls fail with :class:`BackendUnavailable` (a pool retries them
    on its other engines); an engine's HTTP error keeps its status and ``Retry-After``
    (:class:`BackendHTTPError`), which a pool honours for a busy engine. :meth:`stream`
    yields the whole answer as one chunk: nothing shows a call's progress before its
    answer, so a pool does not watch such a member for stalls unless it sets its own
    ``stall_timeout_s``.
    """

    options_model = RayEngineOptions  # what `ponder validate` checks the model's options against
    #: where the engine's backend is found (see :meth:`with_registry`); None: the
    #: installed backends only
    _registry: ClassVar[Registry | None] = None

    default_concurrency = 256

    @classmethod
    def with_registry(cls, registry: Registry) -> type[RayEngineBackend]:
        """This backend with its engine's backend found in ``registry`` (the run's or the
        workflow's: :meth:`Registry.bound_factory`), so that an engine whose backend is
        registered there (the SDK's ``register_backend``) runs in the actor: its factory
        travels to the actor's process by its import path.

        :returns: a subclass bound to ``registry``.
        """
        bound = type(cls.__name__, (cls,), {"_registry": registry, "__module__": cls.__module__,
                                            "__qualname__": cls.__qualname__})
        return cast("type[RayEngineBackend]", bound)

    @classmethod
    def option_problems(cls, options: dict[str, Any]) -> list[OptionProblem]:
        """Every problem of a ``ray-engine``'s ``options:`` that the spec shows, each at its
        path in them (``ponder validate`` reports them at their lines; a run is refused
        with them before it starts): its own options, then its ``engine``'s fields, backend
        and ``options:`` (asked of that backend, as for a pool member), so that a typo in
        them is not found only by the actor, at the first call. An engine backend whose
        package is not installed here is not checked further: the cluster's nodes may
        have it. The engine's backend is found as the actor's is (see
        :meth:`with_registry`)."""
        problems = option_problems(RayEngineOptions, options, "ray-engine backend")
        engine = options.get("engine") if isinstance(options, dict) else None
        if not isinstance(engine, dict) or any(where[:1] == ("engine",)
                                               for where, _ in problems):
            return problems
        _, own, of_options = engine_config_problems(engine, registry_or_default(cls._registry))
        return problems + [(("engine", *where), f"ray-engine backend options: engine: {message}")
                           for where, message in [*own, *of_options]]

    @classmethod
    def config_problems(cls, config: ModelConfig, env: Mapping[str, str]
                        ) -> list[ConfigProblem]:
        """A run is refused before it starts when its engine's backend is registered (the
        SDK's ``register_backend``) as a factory that the actor's process cannot import
        (see :meth:`_engine_factory`): the engine would fail in every actor. Options that
        cannot be read are left to validation and to the run."""
        try:
            engine = ModelConfig.model_validate(RayEngineOptions.model_validate(
                config.options).engine)
        except ValidationError:
            return []
        try:
            cls._engine_factory(engine.backend)
        except ConfigError as exc:
            return [ConfigProblem(
                str(exc), "define it at the top level of a module the Ray workers can "
                "import, and register that", "engine: {backend: AN_INSTALLED_BACKEND}")]
        return []

    @classmethod
    def _engine_factory(cls, name: str) -> str | None:
        """The import path of the engine's backend factory where the registry this class
        is bound to serves ``name`` (None: the actor builds the installed backend).

        :raises ConfigError: naming the backend and why a Ray worker cannot import it.
        """
        registry = cls._registry
        factory = registry.backends.get(name) if registry is not None else None
        if factory is None:
            return None
        path, why = _factory_path(factory)
        if path is None:
            raise ConfigError(
                f"ray-engine: the engine's backend {name!r} is served by "
                f"{_described(factory)}, which the Ray actor's process cannot import: {why}")
        return path

    @classmethod
    def missing_extra(cls, config: ModelConfig) -> str | None:
        """Why this machine cannot build the backend for want of the ``ray`` extra, found
        without importing Ray; None when it is installed. (The engine in the actor runs
        on the cluster, which may have packages this machine lacks: not checked here.)"""
        return None if installed("ray") else extra_missing("the ray-engine backend", "ray", "Ray")

    def __init__(self, config: ModelConfig) -> None:
        """:raises ConfigError: for bad options or an invalid ``engine`` config, or an
            engine backend registered as a factory the actor cannot import
            (:meth:`config_problems` refuses the run before that)."""
        self.config = config
        self.options = parse_options(self.options_model, config.options, "ray-engine")
        try:
            self.engine_config = ModelConfig.model_validate(self.options.engine)
        except ValueError as exc:
            raise ConfigError(f"ray-engine: bad `engine` config: {exc}") from None
        self.name = f"ray:{self.engine_config.backend}:{self.engine_config.model or ''}"
        self._factory_path = self._engine_factory(self.engine_config.backend)
        self._actor: Any = None
        self._start_error: PonderError | None = None
        self._lock = anyio.Lock()

    @property
    def num_gpus(self) -> float:
        """GPUs the actor reserves: the option, else 1 for a GPU engine (vLLM), else 0."""
        if self.options.num_gpus is not None:
            return self.options.num_gpus
        return 1.0 if self.engine_config.backend in GPU_BACKENDS else 0.0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Run one call in the actor.

        :raises BackendUnavailable: when the cluster or the actor is gone.
        """
        ray, actor = await self._started()
        ref = actor.complete.remote(request)
        try:
            status, value = await ref
        except anyio.get_cancelled_exc_class():
            ray.cancel(ref)
            raise
        except ray.exceptions.RayError as exc:
            raise BackendUnavailable(f"{self.name}: the engine actor is gone: "
                                     f"{type(exc).__name__}: {exc}") from exc
        if status == "ok":
            return value  # type: ignore[no-any-return]
        kind, message, http_status, *more = value
        retry_after = more[0] if more and isinstance(more[0], int | float) else None
        request_error = len(more) > 1 and more[1] is True
        if kind == "BackendHTTPError" and http_status is not None:
            raise BackendHTTPError(message, status=http_status, retry_after_s=retry_after)
        if kind == "PoolBusy":  # a pool in the actor whose engines are all busy: busy too
            raise PoolBusy(f"{self.name}: {message}", retry_after_s=retry_after)
        if request_error:
            # the engine's own way of refusing the request (a prompt too long for its
            # context, a bad sampling parameter): a 400, as the pool and the vllm backend
            # read it, so that it is not retried on another engine that would refuse it too
            raise BackendHTTPError(f"{self.name}: the engine rejected the request: "
                                   f"{kind}: {message}", status=400)
        raise _ERRORS.get(kind, BackendError)(f"{self.name}: {message}")

    async def stream(self, request: LLMRequest) -> Any:
        """The answer as one chunk, then the final chunk."""
        response = await self.complete(request)
        yield LLMChunk(response.text)
        yield LLMChunk("", final=response)

    async def health(self) -> bool:
        """Whether the actor answers within ``health_timeout_s``."""
        if self._start_error is not None:
            return False
        if self._actor is None:
            return True
        ray = _ray()
        try:
            with anyio.fail_after(self.options.health_timeout_s):
                return bool(await self._actor.health.remote())
        except (TimeoutError, ray.exceptions.RayError):
            return False

    async def stats(self) -> dict[str, Any]:
        """The engine's counters, read from the actor."""
        _, actor = await self._started()
        return await actor.stats.remote()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop the actor (its engine with it)."""
        if self._actor is None:
            return
        ray = _ray()
        actor, self._actor = self._actor, None
        try:
            with anyio.move_on_after(5):
                await actor.aclose.remote()
        except ray.exceptions.RayError:
            pass
        ray.kill(actor)

    async def _started(self) -> tuple[Any, Any]:
        """The cluster and the started actor.

        :raises ConfigError, BackendError: when the engine cannot start (every call).
        """
        if self._start_error is not None:
            raise self._start_error
        ray = connect_ray(self.options.address)
        async with self._lock:
            if self._start_error is not None:
                raise self._start_error
            if self._actor is None:
                unplaceable = None if self.options.autoscaling else self._unplaceable(ray)
                if unplaceable is not None:
                    self._start_error = ConfigError(unplaceable)
                    raise self._start_error
                cls = ray.remote(EngineActor)
                actor = cls.options(
                    num_gpus=self.num_gpus, num_cpus=self.options.num_cpus,
                    max_concurrency=self.options.max_concurrency,
                ).remote(self.engine_config.model_dump_json(), self._factory_path)
                failure = await self._start_failure(ray, actor)
                if failure is not None:
                    ray.kill(actor)
                    self._start_error = failure
                    raise failure
                self._actor = actor
        return ray, self._actor

    async def _start_failure(self, ray: Any, actor: Any) -> PonderError | None:
        """Why the engine did not start in ``actor`` (None when it did), in one line."""
        timeout = self.options.start_timeout_s
        try:
            with anyio.fail_after(timeout):
                error = await actor.ready.remote()
        except TimeoutError:
            free = ray.available_resources()
            return BackendError(
                f"{self.name}: the engine's Ray actor did not start within {timeout:g}s "
                f"(start_timeout_s); it needs {self._needs()}, and the cluster has "
                f"{free.get('GPU', 0):g} GPU(s) and {free.get('CPU', 0):g} CPU(s) free: "
                "other actors hold the rest (more engines than GPUs?), or the actor's "
                "process is slow to start")
        except ray.exceptions.RayError as exc:  # the actor's process died while starting
            error = (type(exc).__name__, _last_line(str(exc)), None)
        if error is None:
            return None
        kind, message, _ = error
        one_line = "; ".join(line.strip() for line in message.splitlines() if line.strip())
        text = f"{self.name}: the engine could not start in its Ray actor: {kind}: {one_line}"
        return ConfigError(text) if kind == "ConfigError" else BackendError(text)


    def _needs(self) -> str:
        return f"{self.num_gpus:g} GPU(s) and {self.options.num_cpus:g} CPU(s)"

    def _unplaceable(self, ray: Any) -> str | None:
        """Why no live node of the cluster can ever hold the actor; None when one can.
        Ray would keep such an actor pending, and its calls waiting, for ever. Dead nodes
        do not count; nodes an autoscaler has not started yet cannot be seen (the
        ``autoscaling`` option skips this check)."""
        wanted = {"GPU": self.num_gpus, "CPU": self.options.num_cpus}
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        if any(all(r.get(k, 0.0) >= v for k, v in wanted.items()) for r in nodes):
            return None
        gpus = max((r.get("GPU", 0.0) for r in nodes), default=0.0)
        cpus = max((r.get("CPU", 0.0) for r in nodes), default=0.0)
        hint = ("set the ray-engine's `num_gpus: 0` for an engine that needs no GPU, "
                "or join a cluster with GPU nodes (`address:`)" if gpus == 0 < self.num_gpus
                else "lower `num_gpus`/`num_cpus` or add a bigger node")
        hint += ("; on a cluster whose autoscaler adds such nodes on demand, set "
                 "`autoscaling: true`")
        return (f"{self.name}: no node of the Ray cluster can hold the engine's actor: it "
                f"needs {self._needs()} on one node, and its nodes have at most {gpus:g} "
                f"GPU(s) and {cpus:g} CPU(s); {hint}")


def _described(factory: Any) -> str:
    """A backend factory as a message names it: ``module.qualname``."""
    return (f"{getattr(factory, '__module__', None) or '?'}."
            f"{getattr(factory, '__qualname__', None) or type(factory).__name__}")


def _last_line(text: str) -> str:
    """The last non-empty line of a message (a traceback's ends with the error)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
