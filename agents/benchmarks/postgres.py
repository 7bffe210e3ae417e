"""A throwaway PostgreSQL server on loopback, for the worker benchmark and tests.

It runs Debian's server binaries (``initdb``, ``pg_ctl``: package ``postgresql``, which ``make test`` installs when
they are missing) on a free port of 127.0.0.1, with its data and unix socket in a temporary folder, trust
authentication and one database; :meth:`PostgresServer.stop` removes it all. PostgreSQL refuses to run as root,
so under root (as CI runs) the server runs as the ``postgres`` user the Debian package creates.

    with PostgresServer() as server:
        url = server.url  # postgresql://postgres@127.0.0.1:PORT/trendgym
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SERVER_USER = "postgres"  # the server's owner when this process is root (Debian's package creates the user)
DATABASE = "trendgym"
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
INSTALL_HINT = "install Debian's server package: apt-get install -y postgresql (make test does it)"


class PostgresUnavailable(RuntimeError):
    """The server cannot be started here: no binaries, no user to run them as, or a start that failed."""


def find_server_binaries() -> Path:
    """The folder of ``initdb``, ``pg_ctl`` and ``createdb``: the newest /usr/lib/postgresql/<version>/bin (where
    Debian puts them, off the PATH), else the real folder of an ``initdb`` on the PATH (a symbolic link resolved)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found and (on_path := shutil.which("initdb")):
        found = [str(Path(on_path).resolve())]
    if not found:
        raise PostgresUnavailable(f"PostgreSQL's initdb was not found; {INSTALL_HINT}")
    return Path(found[-1]).parent


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One PostgreSQL server in a temporary folder (see the module's notes). A context manager; ``start`` and
    ``stop`` also work on their own, and ``stop`` can be called twice.

    :param fsync: whether the server flushes its writes to disk, as a production server does; tests turn it off
        for speed, the benchmark leaves it on to measure what a user would see
    """

    def __init__(self, fsync: bool = True) -> None:
        self.fsync = fsync
        self.bin = find_server_binaries()
        self.port = 0
        self.root: Path | None = None
        self._running = False

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the server's database (psycopg2, the default postgresql driver)."""
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> PostgresServer:
        """Create the folder, the cluster and the database and start the server; on failure, remove what was made
        and raise :class:`PostgresUnavailable` with the reason (and the end of the server's log)."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="trendgym-postgres-"))
        self.port = free_port()
        data, sockets = self.root / "data", self.root / "sockets"
        sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, SERVER_USER)
            shutil.chown(sockets, SERVER_USER)
        self._run("initdb", "-D", str(data), "-U", SERVER_USER, "-A", "trust", "--no-sync", "-E", "UTF8")
        options = f"-p {self.port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync={'on' if self.fsync else 'off'}"
        log = self.root / "server.log"
        self._running = True  # from here on, stop() tries pg_ctl stop
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", str(START_TIMEOUT), "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SERVER_USER, DATABASE)

    def stop(self) -> None:
        if self.root is None:
            return
        if self._running:
            self._running = False
            with contextlib.suppress(PostgresUnavailable):  # a server that never started
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:  # initdb and postgres refuse root
            if shutil.which("runuser") is None:
                raise PostgresUnavailable("running PostgreSQL as root needs runuser (util-linux) to switch user")
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=START_TIMEOUT + 30)
        except (OSError, subprocess.SubprocessError) as error:
            detail = getattr(error, "stderr", None) or str(error)
            log = self.root / "server.log" if self.root else None
            if log is not None and log.exists():
                detail += " | server log: " + " ".join(log.read_text(errors="replace").split()[-40:])
            raise PostgresUnavailable(f"{program} failed: {' '.join(detail.split())}") from error
