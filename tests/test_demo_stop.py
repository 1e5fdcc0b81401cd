"""`make demo` in a real terminal: what it shows while starting, and that it stops cleanly.

A pseudo-terminal makes it the foreground job of a terminal of 80 x 24, as
a user's shell would, and ``pyte`` renders what it prints onto a screen.
Ctrl-C is typed into the terminal, so the line discipline sends SIGINT to
the whole foreground process group at once (make, uv, the demo and any
child in that group), which is what a test signalling only the demo would
miss. SIGTERM goes to the same group, as ``timeout`` sends it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pyte
import pytest

from monitor.broker import free_port, port_is_free
from tests.console import DRIFTSTREAM

REPOSITORY = Path(__file__).resolve().parent.parent
ROWS, COLUMNS = 24, 80
#: Bounds on each phase; the demo normally needs a fraction of them.
START_TIMEOUT = 150.0
STOP_TIMEOUT = 15.0


class Terminal:
    """A pseudo-terminal of ROWS x COLUMNS running one command as its foreground job."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.lock = threading.Lock()
        self.history = ""  # every line ever displayed, for messages that scroll away
        self.process = subprocess.Popen(
            command,
            cwd=REPOSITORY,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            # the new session's controlling terminal is this pty, so the
            # command is its foreground process group
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the terminal is gone
                return
            if not data:
                return
            with self.lock:
                self.stream.feed(data)
                self.history += "\n" + "\n".join(self.screen.display)

    def text(self) -> str:
        """The screen now, one line per row."""
        with self.lock:
            return "\n".join(self.screen.display)

    def wait_for(self, found: Callable[[str], bool], what: str, timeout: float) -> str:
        """Poll the screen until ``found(screen)``; fail with the screen after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.text()
            if found(screen):
                return screen
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail(f"{what} not on screen within {timeout} s; screen:\n{self.text()}")

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exception: object) -> None:
        if self.process.poll() is None:  # the test failed: leave nothing behind
            for child in psutil.Process(self.process.pid).children(True):
                child.kill()
            self.process.kill()
            self.process.wait(10)
        os.close(self.master)


def descendants(pid: int) -> dict[int, float]:
    """Every process below ``pid``, by pid, with its start time (pids are reused)."""
    return {child.pid: child.create_time() for child in psutil.Process(pid).children(True)}


def alive(processes: dict[int, float]) -> list[str]:
    """The command lines of those processes that still run."""
    running = []
    for pid, started in processes.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == started and process.status() != psutil.STATUS_ZOMBIE:
                running.append(" ".join(process.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return running


def listening_ports(processes: dict[int, float]) -> set[int]:
    ports = set()
    for pid in processes:
        for connection in psutil.Process(pid).net_connections("tcp"):
            if connection.status == psutil.CONN_LISTEN:
                ports.add(connection.laddr.port)
    return ports


def demo_environment() -> dict[str, str]:
    """The user's environment as a terminal has it, without driftstream settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DRIFTSTREAM_") and "proxy" not in key.lower()
    }
    env.update(TERM="xterm-256color", LINES=str(ROWS), COLUMNS=str(COLUMNS))
    return env


def three_models_shown(screen: str) -> bool:
    return all(re.search(rf"^\S*\s*{name} v\d", screen, re.M) for name in ("churn", "fraud", "eta"))


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_make_demo_explains_its_start_fits_the_terminal_and_stops_everything(stop: str) -> None:
    with Terminal(["make", "demo"], demo_environment()) as terminal:
        # while the worker starts, the screen says what it waits for
        terminal.wait_for(
            lambda screen: "Waiting for the worker to start" in screen,
            "the start-up status",
            START_TIMEOUT,
        )
        screen = terminal.wait_for(three_models_shown, "a window of every model", START_TIMEOUT)
        # the whole table and the status line fit on the 24-line screen
        assert "Ctrl-C to stop" in screen
        assert "started the embedded development broker" in terminal.history
        running = descendants(terminal.process.pid)
        commands = [" ".join(psutil.Process(pid).cmdline()) for pid in running]
        assert any("tansu" in command for command in commands), commands
        assert any(command.endswith(" run --config " + command.split()[-1]) for command in commands)
        ports = listening_ports(running)
        assert len(ports) >= 3, ports  # broker, worker's web and metrics ports

        began = time.monotonic()
        if stop == "ctrl-c":
            terminal.type(b"\x03")
        else:
            os.killpg(terminal.process.pid, signal.SIGTERM)
        terminal.process.wait(STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while alive(running) and time.monotonic() < deadline:
            time.sleep(0.1)
        took = time.monotonic() - began
        assert alive(running) == [], f"still running {took:.1f} s after {stop}"
        print(f"{stop}: {len(running)} processes stopped {took:.1f} s after the signal")
        assert [port for port in ports if not port_is_free(port)] == []
        terminal.reader.join(STOP_TIMEOUT)
        assert "stopped: simulated service, worker and broker." in terminal.history
        assert re.search(r"\d+ windows evaluated", terminal.history)


def test_run_with_its_embedded_broker_stops_on_ctrl_c_in_a_terminal(tmp_path: Path) -> None:
    """`driftstream run` alone: Ctrl-C reaches the worker, which then stops its broker."""
    web_port, metrics_port = free_port(), free_port()
    config = tmp_path / "driftstream.yaml"
    config.write_text(
        f"worker: {{web_port: {web_port}, session_timeout: 6s}}\n"
        f"metrics: {{port: {metrics_port}}}\n"
    )
    with Terminal([DRIFTSTREAM, "run", "--config", str(config)], demo_environment()) as terminal:
        deadline = time.monotonic() + START_TIMEOUT
        while not worker_ready(web_port):
            assert terminal.process.poll() is None, terminal.text()
            assert time.monotonic() < deadline, terminal.text()
            time.sleep(0.2)
        running = descendants(terminal.process.pid)
        assert any("tansu" in " ".join(psutil.Process(pid).cmdline()) for pid in running)
        ports = listening_ports(running) | listening_ports({terminal.process.pid: 0.0})
        terminal.type(b"\x03")
        assert terminal.process.wait(STOP_TIMEOUT) == 0
        deadline = time.monotonic() + STOP_TIMEOUT
        while alive(running) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive(running) == []
        assert [port for port in ports if not port_is_free(port)] == []


def worker_ready(port: int) -> bool:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=0.5, trust_env=False)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200
