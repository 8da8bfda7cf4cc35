"""A throwaway PostgreSQL server in a temporary folder: for tests, notebooks and benchmarks.

It runs the machine's own PostgreSQL binaries (``initdb`` and ``pg_ctl``),
listens on 127.0.0.1 only, and is deleted, data and all, when it stops.
PostgreSQL refuses to run as root; as root, the server runs as the
``postgres`` user, which owns the folder.

>>> from eventlab.pgserver import postgres_binaries
>>> postgres_binaries() is None or (postgres_binaries() / "pg_ctl").exists()
True

Typical use (starting a server takes a second or two)::

    with ThrowawayPostgres() as server:
        store = el.connect(server.url)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .errors import EventlabError

#: What to tell someone whose machine has no PostgreSQL.
HOW_TO_INSTALL = ("PostgreSQL is not installed here: on Debian or Ubuntu, "
                  "`sudo apt-get install postgresql` installs it")


def postgres_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (the newest version found), or None."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                      else 0)
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL server of its own, in a temporary folder, until ``stop()``.

    ``durable=False`` turns off ``fsync`` (a crash of the machine loses the
    data; the server is thrown away anyway): what tests want. ``url`` connects
    as the superuser ``postgres`` (with a random password) to the database ``postgres``.
    """

    def __init__(self, durable: bool = True) -> None:
        self.durable = durable
        self.folder: Path | None = None
        self.port = 0
        self.url = ""

    def start(self) -> ThrowawayPostgres:
        binaries = postgres_binaries()
        if binaries is None:
            raise EventlabError(HOW_TO_INSTALL)
        self.folder = Path(tempfile.mkdtemp(prefix="eventlab-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:   # PostgreSQL will not run as root
            shutil.chown(self.folder, "postgres", "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        self._run = lambda *args: subprocess.run(
            [*as_user, *args], check=True, capture_output=True, text=True)
        self._pg_ctl = str(binaries / "pg_ctl")
        data = self.folder / "data"
        self.port = _free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} "
                   "-c max_connections=200")
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        self.password = secrets.token_urlsafe(12)
        password_file = self.folder / "password"
        password_file.write_text(self.password)
        if as_user:
            shutil.chown(password_file, "postgres", "postgres")
        try:
            self._run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
                      f"--pwfile={password_file}", "--auth-local=trust",
                      "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
            password_file.unlink()
            self._run(self._pg_ctl, "-D", str(data), "-l", str(self.folder / "log"), "-w",
                      "-o", options, "start")
        except subprocess.CalledProcessError as exc:
            log = self.folder / "log"
            detail = log.read_text()[-2000:] if log.exists() else ""
            shutil.rmtree(self.folder, ignore_errors=True)
            raise EventlabError(
                f"could not start PostgreSQL: {exc.stderr.strip() or exc}\n{detail}") from None
        self.url = f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        if self.folder is None:
            return
        with contextlib.suppress(subprocess.CalledProcessError):   # already stopped
            self._run(self._pg_ctl, "-D", str(self.folder / "data"), "-m", "fast", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"on 127.0.0.1:{self.port}" if self.folder else "stopped"
        return f"<ThrowawayPostgres {state}>"
