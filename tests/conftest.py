"""Database fixtures: a migrated Store on a SQLite file and on PostgreSQL.

``database_url`` runs each test that uses it twice: on a SQLite file in
``tmp_path`` and, marked ``postgres``, on a fresh PostgreSQL database. The
PostgreSQL server is the one named by FENGHUO_TEST_POSTGRES_URL or, without
it, a throwaway cluster that the session starts from Debian's binaries
(package postgresql) on 127.0.0.1 and stops at the end. Without the binaries
those tests are skipped, or fail when FENGHUO_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:
    from storage import Store

POSTGRES_MISSING = (
    "PostgreSQL server binaries not found (Debian package postgresql); "
    "install them or set FENGHUO_TEST_POSTGRES_URL"
)
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "postgres: needs PostgreSQL (started by the session, or "
        "FENGHUO_TEST_POSTGRES_URL)",
    )


class PostgresCluster:
    """A PostgreSQL cluster in a temporary folder, serving 127.0.0.1 only.

    PostgreSQL refuses to run as root, so under root the server commands run
    as the ``postgres`` system user, which owns the folder.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="fenghuo-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username="postgres",
            host="127.0.0.1",
            port=self.port,
            database="postgres",
        )

    def start(self) -> None:
        self._run(
            "initdb",
            f"--pgdata={self.data}",
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        # The data is thrown away after the session, so durability is off.
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        try:
            self._run(
                "pg_ctl",
                "start",
                "--wait",
                "--timeout=60",
                f"--pgdata={self.data}",
                f"--log={self.log}",
                f"--options={options}",
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\nserver log:\n{self._read_log()}") from None

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(
                    "pg_ctl", "stop", "--wait", "--mode=fast", f"--pgdata={self.data}"
                )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        completed = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, check=False
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed with exit code {completed.returncode}:\n"
                f"{completed.stdout}{completed.stderr}"
            )

    def _read_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _find_postgres_bin() -> Path | None:
    """Return the bin folder of the newest installed PostgreSQL server, if any."""
    folders = [
        Path(initdb).parent
        for initdb in glob.glob(f"{POSTGRES_BIN_GLOB}/initdb")
        if Path(initdb).with_name("pg_ctl").exists()
    ]
    versions = [folder for folder in folders if folder.parent.name.isdigit()]
    return max(versions, key=lambda folder: int(folder.parent.name), default=None)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[URL]:
    """The URL of a PostgreSQL server's maintenance database, for the session."""
    configured = os.environ.get("FENGHUO_TEST_POSTGRES_URL")
    if configured:
        url = make_url(configured)
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        yield url
        return

    bin_dir = _find_postgres_bin()
    if bin_dir is None:
        if os.environ.get("FENGHUO_REQUIRE_SERVICES") == "1":
            pytest.fail(POSTGRES_MISSING)
        pytest.skip(POSTGRES_MISSING)
    cluster = PostgresCluster(bin_dir)
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.stop()


def _fresh_postgres_database(server: URL) -> Iterator[str]:
    name = f"fenghuo_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty database, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fenghuo.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    yield from _fresh_postgres_database(server)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated Store; after the test, no pooled connection may be checked out."""
    from storage import Store

    store = Store(database_url)
    try:
        store.migrate()
        yield store
        checked_out = store.engine.pool.checkedout()
        assert checked_out == 0, (
            f"{checked_out} pooled connection(s) still checked out after the test"
        )
    finally:
        store.close()
