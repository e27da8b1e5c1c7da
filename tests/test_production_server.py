"""The servers hold the request-body limit before they read a body: the production server (gunicorn with 2 workers,
web/gunicorn_conf.py, on PostgreSQL) and `civicflow serve` (waitress).

Each test starts the real server command and talks to it over a socket: a 500 MiB upload declared to the public
disputes endpoint is refused with 413 after its headers, before more than a few KiB of its body were sent, while
`/api/v1/openapi.json` and `/healthz` are answered; a chunked upload over the limit is refused too. No body is
spooled to a temporary file meanwhile (the servers' open files are looked at). `/healthz` answers 503 with a
short reason when the database goes away.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from werkzeug.test import Client

from bench import abuse, harness
from engine.settings import Settings
from web.public import PUBLIC_MAX_BYTES
from web.serving import BodyLimit

PG_URL = os.environ.get("CIVICFLOW_TEST_POSTGRES_URL")
ROOT = Path(__file__).resolve().parent.parent
DISPUTES = "/api/v1/public/disputes"
HALF_GIB = 500 * 1024 * 1024
PIECE = 64 * 1024
UPLOADS = 6  # held open at once while others are answered
CIVICFLOW = str(Path(sys.executable).with_name("civicflow"))


@pytest.fixture
def throwaway_postgres() -> Iterator[str]:
    """An empty PostgreSQL database of its own (the server migrates it), dropped at the end."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests are off: set CIVICFLOW_TEST_POSTGRES_URL (.ci/run does)")
    name = f"civicflow_production_{uuid.uuid4().hex[:10]}"
    with harness.admin(PG_URL) as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        drop(name)


def drop(name: str) -> None:
    """Drop a database, closing whoever is connected to it."""
    with harness.admin(PG_URL) as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Server:
    """A server command started on a free port with its own database, instance folder and temporary folder."""

    def __init__(self, command: list[str], url: str, folder: Path):
        self.port = abuse.free_port()
        self.tmp = folder / "tmp"
        self.tmp.mkdir()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CIVICFLOW_")},
            "CIVICFLOW_DATABASE_URL": url,
            "CIVICFLOW_SECRET_KEY": harness.SECRET,
            "CIVICFLOW_INSTANCE_PATH": str(folder),
            "TMPDIR": str(self.tmp),
        }
        self.log = (folder / "server.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - this repository's own server commands
            [*command, "--port", str(self.port)], env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        """Until /healthz answers 200; the server's log in the failure if it stops first."""
        while self.process.poll() is None:
            try:
                if get(f"{self.base}/healthz")[0] == 200:
                    return
            except OSError:
                select.select([], [], [], 0.2)
        pytest.fail(f"the server stopped: {Path(self.log.name).read_text()[-3000:]}")

    def spooled(self) -> list[str]:
        """The files the server's processes hold open in its temporary folder (a spooled body would be one)."""
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        held = []
        for pid in pids:
            with contextlib.suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        target = os.readlink(fd)
                        if target.startswith(str(self.tmp)):
                            held.append(target)
        return held

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()


@contextlib.contextmanager
def running(command: list[str], url: str, folder: Path) -> Iterator[Server]:
    server = Server(command, url, folder)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def get(url: str) -> tuple[int, dict]:
    """Status and JSON body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - the test's loopback server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Upload:
    """One POST on its own connection: its head, then its body a piece at a time, as long as no answer has come."""

    def __init__(self, port: int, path: str, *, declared: int | None, pieces: int, piece: bytes, close: str = ""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        framing = f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked"
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\n{close}\r\n"
        self.sock.sendall(head.encode())
        if declared is None:
            piece = b"%x\r\n%s\r\n" % (len(piece), piece)
        self.sent = 0  # bytes of the body sent before the server answered
        for _ in range(pieces):
            if select.select([self.sock], [], [], 0.05)[0]:
                break  # the server answered (or closed): send no more
            try:
                self.sock.sendall(piece)
            except OSError:
                break
            self.sent += len(piece)
        else:
            if declared is None:
                self.sock.sendall(b"0\r\n\r\n")  # the last chunk: the whole body was sent

    def answer(self) -> tuple[int | None, bool]:
        """The status the server answered with, and whether it said it closes the connection and did."""
        data, closed, headers = b"", False, {}
        try:
            while b"\r\n\r\n" not in data:
                received = self.sock.recv(65536)
                if not received:
                    break
                data += received
            head, _, body = data.partition(b"\r\n\r\n")
            headers = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
            while len(body) < int(headers.get(b"content-length", 0)):
                received = self.sock.recv(65536)
                if not received:
                    break
                body += received
            closed = self.sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        finally:
            self.sock.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
        return status, closed and headers.get(b"connection") == b"close"


def refuses_half_a_gibibyte_while_others_are_answered(server: Server) -> None:
    """Uploads declaring 500 MiB to the public endpoint, held open: others are answered; each upload gets 413."""
    uploads = [Upload(server.port, DISPUTES, declared=HALF_GIB, pieces=16, piece=b"x" * PIECE) for _ in range(UPLOADS)]
    assert server.spooled() == []
    assert get(f"{server.base}/api/v1/openapi.json")[0] == 200
    assert get(f"{server.base}/healthz") == (200, {"status": "ok"})
    for upload in uploads:
        assert upload.answer() == (413, True)
        assert upload.sent <= PIECE  # refused on its headers: at most the first piece was sent
    assert server.spooled() == []


def refuses_a_chunked_body_over_the_limit(server: Server, limit: int) -> None:
    """A chunked upload (no length declared) is refused once it passes the limit, and the connection closed."""
    pieces = limit // PIECE + 64  # 4 MiB more than the limit
    upload = Upload(server.port, DISPUTES, declared=None, pieces=pieces, piece=b"x" * PIECE)
    assert upload.answer() == (413, True)
    assert upload.sent < pieces * (PIECE + 16)  # the server answered before the whole body was sent
    assert get(f"{server.base}/healthz")[0] == 200


def files_a_dispute_under_the_limit(server: Server) -> None:
    """A filing under the limit goes through, with its length declared and chunked: the limit is in no one's way."""
    filing = json.dumps(abuse.DISPUTE).encode()
    for declared in (len(filing), None):
        upload = Upload(server.port, DISPUTES, declared=declared, pieces=1, piece=filing, close="Connection: close\r\n")
        assert upload.answer() == (201, True)


PRODUCTION = [CIVICFLOW, "serve", "--production", "--workers", "2"]


@pytest.mark.alone
@pytest.mark.postgres
def test_production_server_refuses_large_bodies_unread_and_answers_others(throwaway_postgres, tmp_path):
    with running(PRODUCTION, throwaway_postgres, tmp_path) as server:
        refuses_half_a_gibibyte_while_others_are_answered(server)
        refuses_a_chunked_body_over_the_limit(server, PUBLIC_MAX_BYTES)
        files_a_dispute_under_the_limit(server)


@pytest.mark.alone
@pytest.mark.postgres
def test_production_health_check_answers_503_when_the_database_is_gone(throwaway_postgres, tmp_path):
    with running(PRODUCTION, throwaway_postgres, tmp_path) as server:
        drop(make_url(throwaway_postgres).database)
        status, body = get(f"{server.base}/healthz")
        assert status == 503
        assert body == {"status": "unavailable", "reason": "the database does not answer"}


def test_civicflow_serve_refuses_large_bodies_unread_and_answers_others(tmp_path):
    with running([CIVICFLOW, "serve"], f"sqlite:///{tmp_path / 'civicflow.sqlite3'}", tmp_path) as server:
        refuses_half_a_gibibyte_while_others_are_answered(server)
        # waitress takes the body whole before the app sees it: its own limit is the app's (6 MiB).
        refuses_a_chunked_body_over_the_limit(server, Settings.max_request_bytes)
        files_a_dispute_under_the_limit(server)


# ---- the limit itself, in front of the app ----------------------------------------------------------------


def test_a_declared_body_over_the_limit_gets_the_apps_own_refusal_unread(app):
    client = Client(BodyLimit(app))
    unread = {"CONTENT_LENGTH": str(HALF_GIB), "wsgi.input": Unreadable()}
    answer = client.post(DISPUTES, data=b"", content_type="application/json", environ_overrides=unread)
    assert answer.status_code == 413
    assert answer.json["error"]["message"].startswith("What you sent is larger than this form accepts")
    page = client.post("/public/dispute", data=b"", content_type="text/plain", environ_overrides=unread)
    assert page.status_code == 413
    assert "What you sent is larger than this form accepts" in page.text


def test_a_chunked_body_over_the_limit_is_refused_not_cut_short(app):
    # Werkzeug alone would read the first 256 KiB and call the rest malformed JSON (or parse a truncated form).
    chunked = {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"}
    body = json.dumps({**abuse.DISPUTE, "basis": "x" * PUBLIC_MAX_BYTES}).encode()
    answer = Client(BodyLimit(app)).post(
        DISPUTES, data=body, content_type="application/json", environ_overrides=chunked
    )
    assert answer.status_code == 413
    assert answer.json["error"]["code"] == "too_large"


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def readinto(self, _buffer) -> int:
        pytest.fail("the body was read")
