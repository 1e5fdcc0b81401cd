"""Child processes (embedded broker, demo worker) that stop when and how their parent says.

A terminal sends Ctrl-C (SIGINT) to its whole foreground process group. A
broker or worker in the parent's group would get it at the same moment as
the parent and die before the parent has stopped what depends on it (a
worker cannot shut down cleanly once its broker is gone). So every child
starts in a process group of its own, the parent stops the children in
order, and the kernel kills a child whose parent dies without doing so
(``PR_SET_PDEATHSIG``), so none is ever left behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

#: ``prctl`` option of Linux: the signal a process gets when its parent exits.
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when the parent exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(
    command: Sequence[str],
    log_path: Path | None = None,
    environment: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group, killed if this process dies.

    Its output is appended to ``log_path`` (default: discarded); its
    environment is this process's with ``environment`` added. Call
    :func:`spawn` from the main thread: the parent-death signal fires when
    the *thread* that started the child ends.

    Examples
    --------
    >>> process = spawn(["sleep", "30"])
    >>> os.getpgid(process.pid) == process.pid
    True
    >>> stop_process(process)
    >>> process.returncode
    -15
    """
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0,
            env=None if environment is None else {**os.environ, **environment},
            preexec_fn=_die_with_parent if os.uname().sysname == "Linux" else None,
        )
    finally:
        if not isinstance(output, int):
            output.close()


def stop_process(
    process: subprocess.Popen[bytes],
    timeout: float = 5.0,
    hurry: threading.Event | None = None,
) -> None:
    """Terminate ``process``; kill it after ``timeout`` seconds or once ``hurry`` is set.

    Examples
    --------
    >>> process = spawn(["sleep", "30"])
    >>> hurry = threading.Event()
    >>> hurry.set()
    >>> stop_process(process, timeout=60, hurry=hurry)
    >>> process.returncode in (-15, -9)
    True
    """
    if process.poll() is not None:
        return
    process.terminate()
    waited = 0.0
    step = 0.05
    while waited < timeout and not (hurry is not None and hurry.is_set()):
        try:
            process.wait(step)
            return
        except subprocess.TimeoutExpired:
            waited += step
    process.kill()
    process.wait(timeout)
