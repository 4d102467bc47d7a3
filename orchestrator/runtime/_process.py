"""Who writes a run: this process's identity, and whether a recorded writer still lives.

A ``run_started`` event records its writer (host name, pid, process start); a reader on
the same host can then tell a run whose process died (SIGKILL, crash, power loss) from
one still running. A pid alone is not enough: pids are reused, so the process start
(the boot id and the start time in clock ticks, from ``/proc`` on Linux) is compared too.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
from pathlib import Path
from typing import Literal

__all__ = ["host_name", "process_start", "writer_alive", "writer_fields", "writer_gone"]


def host_name() -> str:
    """This machine's host name."""
    return socket.gethostname()


def process_start(pid: int) -> str | None:
    """A token that differs between two processes given the same pid: the boot id and
    the process start time in clock ticks since boot.

    :returns: the token, or ``None`` where ``/proc`` cannot tell (not Linux, no such process).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20:
        return None
    return f"{boot}:{fields[19]}"  # field 22 of stat: starttime


def _pid_namespace() -> str | None:
    """This process's pid namespace (``pid:[inode]``), or ``None`` where it cannot tell."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


@functools.cache
def _own_start() -> str | None:
    start = process_start(os.getpid())
    return None if start is None else f"{_pid_namespace()}|{start}"


def writer_fields() -> dict[str, str | int | None]:
    """The ``writer_*`` fields of a ``run_started`` event written by this process:
    ``writer_start`` is its pid namespace and :func:`process_start` token."""
    return {"writer_host": host_name(), "writer_pid": os.getpid(), "writer_start": _own_start()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM  # alive, owned by another user
    return True


def writer_state(host: str | None, pid: int | None, start: str | None
                 ) -> Literal["alive", "gone", "unknown"]:
    """What is known of the process recorded as a run's writer.

    Only a writer on this host can be checked; one recorded without host or pid (a
    trace of an older Ponder), on another host, or in another pid namespace (a container
    sharing the host name, whose pids mean nothing here) is ``unknown``.

    :param host: the recorded host name; ``pid``: its pid; ``start``: its pid namespace
        and :func:`process_start` token, as :func:`writer_fields` writes it (``None``:
        compare the pid only).
    :returns: ``gone`` when the pid is not alive here, or is alive but a different
        process (another start token); ``alive`` when it is alive and (where recorded)
        the same process start; else ``unknown``.
    """
    if host is None or pid is None or pid <= 0 or host != host_name():
        return "unknown"
    namespace, _, token = (start or "").rpartition("|")
    if namespace and namespace != _pid_namespace():
        return "unknown"
    if not _pid_alive(pid):
        return "gone"
    if not token:
        return "alive"
    now = process_start(pid)
    if now is None:
        return "unknown"
    return "alive" if now == token else "gone"


def writer_gone(host: str | None, pid: int | None, start: str | None) -> bool:
    """Whether the process recorded as a run's writer is known to have ended
    (:func:`writer_state`)."""
    return writer_state(host, pid, start) == "gone"


def writer_alive(host: str | None, pid: int | None, start: str | None) -> bool:
    """Whether the process recorded as a run's writer is known to be running still
    (:func:`writer_state`); a writer that cannot be checked is neither alive nor gone."""
    return writer_state(host, pid, start) == "alive"
