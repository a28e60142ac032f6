"""The real server for the SDK's tests: the `pulsyon` binary on loopback ports,
each test with a database of its own on the test PostgreSQL.

Environment (scripts/test.sh sets both):
  PULSYON_BIN                the server binary (default: target/debug/pulsyon)
  PULSYON_TEST_DATABASE_URL  an admin URL of the test PostgreSQL
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = os.environ.get("PULSYON_BIN", str(ROOT / "target" / "debug" / "pulsyon"))
ADMIN_URL = os.environ.get(
    "PULSYON_TEST_DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/postgres"
)


def psql(url: str, sql: str) -> list[list[str]]:
    """Rows of a query, each a list of text fields (tab-separated by psql)."""
    out = subprocess.run(
        ["psql", url, "-XqAt", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The real `pulsyon serve`, restartable on the same gRPC port."""

    def __init__(self, database_url: str, workdir: Path, extra_args=()):
        self.database_url = database_url
        self.workdir = workdir
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.proc = None
        self.starts = 0
        self.start()

    @property
    def url(self) -> str:
        scheme = "https" if "--tls-cert" in self.extra_args else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        addr_file = self.workdir / f"addr-{self.starts}"
        log = open(self.workdir / f"server-{self.starts}.log", "wb")
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["RUST_LOG"] = "warn"
        self.proc = subprocess.Popen(
            [BIN, "--log-format", "json", "serve",
             "--grpc-addr", f"127.0.0.1:{self.port}", "--http-addr", "127.0.0.1:0",
             "--addr-file", str(addr_file), "--database-url", self.database_url,
             "--data-dir", str(self.workdir / "data"), *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env,
        )
        deadline = time.monotonic() + 120
        while True:
            if addr_file.exists() and len(addr_file.read_text().splitlines()) >= 2:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"pulsyon exited during start-up:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"pulsyon did not start:\n{self.logs()}")
            time.sleep(0.05)

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("server-*.log")))

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Env:
    """A database, a running server and a tenant with a key of every scope."""

    def __init__(self, server_args=()):
        self.dbname = f"pulsyon_test_{uuid.uuid4().hex}"
        psql(ADMIN_URL, f"CREATE DATABASE {self.dbname}")
        self.db = ADMIN_URL.rsplit("/", 1)[0] + "/" + self.dbname
        self.tmp = tempfile.TemporaryDirectory()
        workdir = Path(self.tmp.name)
        os.chmod(workdir, 0o755)
        self.server = Server(self.db, workdir, server_args)
        out = subprocess.run(
            [BIN, "tenant", "create", "sdk", "--database-url", self.db],
            check=True, capture_output=True, text=True,
            env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        )
        self.key = out.stdout.strip()

    @property
    def url(self) -> str:
        return self.server.url

    def rows(self, sql: str) -> list[list[str]]:
        return psql(self.db, sql)

    def count(self, where: str = "true") -> tuple[int, int]:
        """(rows, distinct event ids) stored in api_logs."""
        [[n, distinct]] = self.rows(f"select count(*), count(distinct event_id) from api_logs where {where}")
        return int(n), int(distinct)

    def admin_call(self, method: str, request):
        from pulsyon.v1 import admin_pb2_grpc

        target = self.url.split("://", 1)[1]
        with grpc.insecure_channel(target) as channel:
            stub = admin_pb2_grpc.AdminStub(channel)
            return getattr(stub, method)(request, metadata=[("authorization", f"Bearer {self.key}")])

    def close(self) -> None:
        self.server.stop()
        psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
        self.tmp.cleanup()


@pytest.fixture
def env():
    e = Env()
    yield e
    e.close()


@pytest.fixture
def make_env():
    made = []

    def make(server_args=()):
        e = Env(server_args)
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()
