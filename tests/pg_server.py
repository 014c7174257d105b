"""A real, throwaway PostgreSQL server for tests: `initdb` into a temp folder, `pg_ctl start` on a
free 127.0.0.1 port with password (SCRAM) authentication, one database, `pg_ctl stop` and the
folder removed afterwards.

The binaries are Debian's (`apt-get install postgresql`, which `.ci/run` does): `initdb` and
`pg_ctl` on PATH, else the newest /usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run as
root, so when the tests run as root (CI does) the server's folder belongs to, and its programs run
as, the unprivileged user `nobody`. Without binaries the tests using it skip saying so, except
under CI (`CI` set), where they fail: CI installs them.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

UNPRIVILEGED_USER = "nobody"
START_TIMEOUT = 60


def find_binaries() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`, or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: [
            int(part) for part in path.parent.parent.name.split(".") if part.isdigit()
        ],
    )
    for initdb in reversed(versions):
        if (initdb.parent / "pg_ctl").exists():
            return initdb.parent
    return None


def require_binaries() -> Path:
    binaries = find_binaries()
    if binaries:
        return binaries
    message = (
        "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql/*/bin: "
        "install Debian's `postgresql` package (.ci/run does)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str = "dagster"
    folder: Path = Path()

    @property
    def url(self) -> str:
        """The connection URL (it holds the password), with the driver SQLAlchemy 2.1 needs."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def connect(self):
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.database,
            connect_timeout=10,
        )

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        connection = self.connect()
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    @property
    def log(self) -> str:
        try:
            return (self.folder / "server.log").read_text(errors="replace")
        except OSError:
            return ""


def _run_as(user: pwd.struct_passwd | None) -> dict:
    """subprocess arguments running a program as `user` (None: as ourselves)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


@contextmanager
def postgres_server(database: str = "dagster") -> Iterator[PgServer]:
    """Start a PostgreSQL server in a new temp folder; stop it and remove the folder on exit."""
    binaries = require_binaries()
    user = pwd.getpwnam(UNPRIVILEGED_USER) if os.geteuid() == 0 else None
    # Not under pytest's tmp_path: its parents are private to root, and `nobody` must reach it.
    folder = Path(tempfile.mkdtemp(prefix="okr-pg-"))
    password = secrets.token_urlsafe(18)
    server = PgServer("127.0.0.1", free_port(), "okr", password, database, folder)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(folder)}
    as_user = _run_as(user)
    started = False
    try:
        (folder / "pwfile").write_text(password + "\n")
        if user:
            os.chown(folder, user.pw_uid, user.pw_gid)
            os.chown(folder / "pwfile", user.pw_uid, user.pw_gid)

        def run(*args: str) -> None:
            result = subprocess.run(
                [str(binaries / args[0]), *args[1:]],
                env=env,
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT,
                **as_user,
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"{args[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                    f"\n--- server log ---\n{server.log}"
                )

        run(
            "initdb",
            "-D",
            str(folder / "data"),
            "-U",
            server.user,
            f"--pwfile={folder / 'pwfile'}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        options = " ".join(
            [
                f"-p {server.port}",
                f"-k {folder}",  # the socket in our folder, not /var/run/postgresql
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",  # a throwaway server: speed over durability
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",  # daemon, webserver, code server and run workers
            ]
        )
        run(
            "pg_ctl",
            "-D",
            str(folder / "data"),
            "-l",
            str(folder / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT),
            "start",
        )
        started = True
        import psycopg2

        admin = psycopg2.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=password,
            dbname="postgres",
            connect_timeout=10,
        )
        try:
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{database}"')
        finally:
            admin.close()
        yield server
    finally:
        if started:
            with suppress(Exception):
                run("pg_ctl", "-D", str(folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
