"""`openpairs serve DIR` as a real process on a real socket: bad requests, body caps, `--workers 2`.

The server is the command a user runs (uvicorn on 127.0.0.1, port 0: the one bound is read from its log);
requests go over TCP with httpx or a raw socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.tiny_clip import TINY_MODEL
from tests.serve.conftest import DIM, Dataset
from tests.serve.test_serve_errors import CASES, GOOD

MAX_BODY = 2 * 1024 * 1024
STARTUP_LIMIT = 600.0  # only bounds a server that never comes up; a start takes seconds on a quiet machine
FROZEN_SECONDS = 8.0  # longer than uvicorn's default worker health-check timeout (5 s)


class ServeProcess:
    """`python -m openpairs serve` in its own process group, its log in a file."""

    def __init__(self, dataset: Dataset, log: Path, *extra: str) -> None:
        command = [sys.executable, "-m", "openpairs", "serve", str(dataset.root), "--port", "0",
                   "--clip-model", TINY_MODEL, "--clip-checkpoint", dataset.checkpoint, "--max-body", "2M", *extra]  # fmt: skip
        self.log = log
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.url = ""

    def wait_until_serving(self, on_poll: Any = None) -> str:
        """Poll the log for the bound address, then /healthz until it answers; returns the base URL."""
        deadline = time.monotonic() + STARTUP_LIMIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}: {self.log.read_text()}")
            if on_poll is not None:
                on_poll()
            found = re.search(r"serving .* on (http://127\.0\.0\.1:\d+)", self.log.read_text())
            if found and _answers(found.group(1) + "/healthz"):
                self.url = found.group(1)
                return self.url
            time.sleep(0.2)
        raise AssertionError(f"serve did not answer within {STARTUP_LIMIT} s: {self.log.read_text()}")

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One single-process server for the module; yields its base URL."""
    process = ServeProcess(dataset, tmp_path_factory.mktemp("serve-log") / "serve.log")
    try:
        yield process.wait_until_serving()
    finally:
        process.stop()


@pytest.mark.parametrize(("path", "body", "status", "message"), CASES)
def test_bad_request_over_the_socket_gets_clear_4xx(
    server: str, path: str, body: Any, status: int, message: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(server + path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_good_request_over_the_socket(server: str) -> None:
    response = httpx.post(server + "/api/search", json={"embedding": GOOD, "k": 5})
    assert response.status_code == 200 and len(response.json()["results"]) == 5
    response = httpx.post(server + "/api/search", json={"text": "caption number 7", "k": 3})
    assert response.status_code == 200 and len(response.json()["results"]) == 3


def _http_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """Read one HTTP response (status line, headers, Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return int(lines[0].split()[1]), json.loads(body)


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def test_declared_huge_body_is_413_before_it_is_sent(server: str) -> None:
    """Content-Length of 10 GiB, 64 KiB actually sent: the answer can only come from the declared size."""
    with _connect(server) as sock:
        head = (
            "POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10 * 1024**3}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"{" + b" " * 65535)
        status, payload = _http_response(sock)
    assert status == 413 and payload["detail"] == f"request body larger than {MAX_BODY} bytes"


def test_streamed_body_is_413_once_past_the_cap_without_its_end(server: str) -> None:
    """A chunked body of unknown length: the server answers after reading just past the cap, while the
    client has not finished (no last chunk is ever sent)."""
    chunk = b" " * 65536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with _connect(server) as sock:
        head = (
            "POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        for _ in range(MAX_BODY // len(chunk) + 1):  # one chunk past the cap, and no terminating chunk
            sock.sendall(framed)
        status, payload = _http_response(sock)
    assert status == 413 and "larger than" in payload["detail"]


def _children(pid: int) -> dict[int, str]:
    """Live child processes of `pid` (from /proc): pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if parent == pid:
            found[int(entry.name)] = command
    return found


def _workers(pid: int) -> set[int]:
    return {child for child, command in _children(pid).items() if "spawn_main" in command}


def _freeze_while_starting(pid: int, count: int) -> set[int]:
    """SIGSTOP the first `count` workers of `pid` as they appear, hold them FROZEN_SECONDS (as a machine too
    busy to schedule them would), then SIGCONT; returns their pids."""
    workers: set[int] = set()
    deadline = time.monotonic() + STARTUP_LIMIT
    while len(workers) < count and time.monotonic() < deadline:
        for worker in _workers(pid) - workers:
            os.kill(worker, signal.SIGSTOP)
            workers.add(worker)
        time.sleep(0.05)
    time.sleep(FROZEN_SECONDS)
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):  # the supervisor killed it
            os.kill(worker, signal.SIGCONT)
    return workers


def test_two_workers_start_answer_and_stop(dataset: Dataset, tmp_path: Path) -> None:
    """Two worker processes start, even when frozen longer than uvicorn's default health-check timeout
    while loading (which got every slow-starting worker killed and replaced, forever), answer, and stop."""
    process = ServeProcess(dataset, tmp_path / "serve.log", "--workers", "2")
    try:
        seen = _freeze_while_starting(process.process.pid, 2)
        url = process.wait_until_serving(lambda: seen.update(_workers(process.process.pid)))
        for _ in range(20):
            response = httpx.post(url + "/api/search", json={"embedding": [0.1] * DIM, "k": 3})
            assert response.status_code == 200 and len(response.json()["results"]) == 3
        workers = _workers(process.process.pid)
        seen |= workers
        assert len(workers) == 2 and seen == workers  # two workers, never replaced while starting
        metadata = str(dataset.root / "index" / "metadata.arrow")
        for worker in workers:  # each worker loaded the index (its metadata file is memory-mapped there)
            assert metadata in Path(f"/proc/{worker}/maps").read_text()
    finally:
        code = process.stop()
    assert code == 0
    assert not any(Path(f"/proc/{worker}").exists() for worker in seen)  # no orphan left behind
