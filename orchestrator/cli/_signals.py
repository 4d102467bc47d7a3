"""Ctrl-C and SIGTERM during ``ponder run``, ``ponder resume`` and ``ponder replay``: they
cancel the run until it has finished, and change nothing after.

The handlers stay installed from before the run starts until the command has reported
it. anyio's signal receiver would not do: leaving it puts Python's default handlers back
(asyncio's ``remove_signal_handler``) while the store is still closing and the result not
yet printed, so a Ctrl-C there raised ``KeyboardInterrupt`` (exit 130) and a SIGTERM
ended the process, for a run whose success was already stored. Each handler only writes
the signal's number to a socket (the self-pipe pattern), which a task of the run reads.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any, TypeVar

import anyio
import anyio.abc

from orchestrator.cli._console import err
from orchestrator.cli._failure import Failure

T = TypeVar("T")
#: the signals that cancel a run: Ctrl-C, and ``kill``'s default
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Catch :data:`STOP_SIGNALS` while a run is going (a context manager, entered in the
    main thread, around the event loop that runs it and around reporting it).

    :attr signal: the first signal that came before the run finished, else None.
    :attr finished: the run's own ``run_finished`` has been through the hooks before
        :meth:`hook` (the store's): its final status is durable.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self.finished = False
        #: the scope a signal cancels while the run's scheduler is not known: the opening
        #: of the store, before the run starts (see :meth:`cancels`)
        self.opening: anyio.CancelScope | None = None
        self._scheduler: Any = None
        self._root: str | None = None
        self._saved: dict[int, Any] = {}
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            try:
                self._saved[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: signals are the main thread's
                break
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        self._read.close()
        self._write.close()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        try:
            self._write.send(bytes([signum]))
        except OSError:  # the socket is full: signals enough are waiting to be read
            pass

    async def watch(self, *, task_status: anyio.abc.TaskStatus[None] =
                    anyio.TASK_STATUS_IGNORED) -> None:
        """Act on each signal as it comes, until cancelled."""
        wait = getattr(anyio, "wait_readable", None) or anyio.wait_socket_readable
        task_status.started()
        while True:
            await wait(self._read)
            for signum in self._read.recv(64):
                self._got(signum)

    def _got(self, signum: int) -> None:
        if self.finished:
            return  # the run has ended, its status stored: nothing left to cancel
        if self.signal is None:
            self.signal = signum
        err.print("[yellow]cancelling...[/yellow]")
        self._cancel()

    def started(self, scheduler: Any) -> None:
        """The run's scheduler (``on_scheduler``): a signal that came while the run was
        being prepared cancels it now."""
        self._scheduler = scheduler
        self._cancel()

    def _cancel(self) -> None:
        if self.signal is None:
            return
        if self._scheduler is not None:
            self._scheduler.cancel()
        elif self.opening is not None:
            self.opening.cancel()

    @contextmanager
    def cancels(self) -> Iterator[anyio.CancelScope]:
        """A scope that a stop signal cancels (at once if one came before it): around
        opening the store, before the run's scheduler is handed over (:meth:`started`)."""
        with anyio.CancelScope() as scope:
            self.opening = scope
            self._cancel()
            try:
                yield scope
            finally:
                self.opening = None

    async def hook(self, events: Sequence[Any]) -> None:
        """A hook after the store's: it sees the run's ``run_finished`` once stored."""
        for event in events:
            self._root = self._root or event.run_id
            if event.kind == "run_finished" and event.run_id == self._root:
                self.finished = True


async def run_stopping(stops: StopSignals, open_store: Callable[[], Awaitable[Any]],
                       start: Callable[[Any, list[Any], Callable[[Any], None]], Awaitable[T]],
                       *, what: str) -> T:
    """Open the store (``open_store()``), start a run in it, close the store: ``ponder
    run``, ``ponder resume`` and ``ponder replay`` alike. A stop signal cancels the
    opening of the store; after it, it cancels the run through its scheduler, which
    ``start(store, hooks, on_scheduler)`` hands over by passing ``on_scheduler`` to the
    run (``Workflow.run``, ``durable.resume``, ``durable.replay``), with the hooks given
    (the store's, then ``stops.hook``). The run ends as cancelled, recorded so, and
    returns its result; a signal that came before the scheduler was handed over cancels
    it as it starts.

    :param what: the run, as the message of a signal before the store was open names it.
    :raises Failure: when a signal came before the store was open (no run started).
    """
    from orchestrator.store import StoreHook

    try:
        async with anyio.create_task_group() as tg:
            await tg.start(stops.watch)
            try:
                with stops.cancels() as opening:
                    store = await open_store()  # an unreachable store: no run starts
                if opening.cancelled_caught:
                    raise _interrupted(stops, what)
                try:
                    result = await start(store, [StoreHook(store), stops.hook], stops.started)
                finally:
                    await store.close()
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the task group's: the error inside it, if one
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        if leaf is group:
            raise
        raise leaf from None
    return result


def _interrupted(stops: StopSignals, what: str) -> Failure:
    signum = stops.signal or signal.SIGINT
    return Failure(f"interrupted before {what} started", kind="interrupted",
                   code=128 + signum)
