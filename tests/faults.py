"""Fault injection for tests and `bin/bench faults`: a Redis and a PostgreSQL of their own (on
free ports, never the shared ones on 6379/5432) that may be killed and restarted, a gunicorn, and
plain HTTP posts of unloadings."""

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(condition: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


class OwnRedis:
    """redis-server without persistence: a restart loses every queued message, as a crash of a
    Redis without AOF does."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        _wait(answers, timeout=20, what="redis-server")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def queued(self, queue: str) -> int:
        return redis.Redis(port=self.port).llen(queue)


class OwnPostgres:
    """A PostgreSQL cluster of its own in a temporary folder (initdb + pg_ctl as the postgres
    user when run as root), to be stopped and started under load."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="scrapannot-pg-"))
        self.data = self.folder / "data"

    def _run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.folder, "postgres")
            command = ["su", "postgres", "-c", " ".join(command)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "-o",
            f"'-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off'",
            "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: no checkpoint, connections cut, as a crash or a failover would."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class Gunicorn:
    """The web app as README's production section runs it, with the given environment."""

    def __init__(self, env: dict[str, str], log: Path, *, workers: int = 2) -> None:
        self.env, self.log, self.workers = env, log, workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "scrapannot.wsgi", "--workers",
                 str(self.workers), "--bind", f"127.0.0.1:{self.port}", "--timeout", "120"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

        def answers() -> bool:
            try:
                return http_call(self.port, "GET", "/healthz")[0] in (200, 503)
            except OSError:
                return False

        _wait(answers, timeout=60, what="gunicorn")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


def http_call(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post_unloading(
    port: int, token: str, manifest: dict[str, Any], files: dict[str, bytes]
) -> tuple[int, bytes]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="manifest"\r\n\r\n'.encode()
        + json.dumps(manifest).encode()
        + b"\r\n"
    ]
    for name, data in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}"\r\nContent-Type: image/jpeg\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    headers = {
        "Authorization": f"Token {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    return http_call(port, "POST", "/api/v1/unloadings/", b"".join(parts), headers)


def send_task(broker_url: str, name: str, *, queue: str = "celery") -> None:
    """Send a task by name to a broker, as beat would (a Celery app of its own, so the suite's
    app keeps its broker). The connection is explicit: Celery's `broker_url` would prefer the
    CELERY_BROKER_URL of the environment, the suite's broker."""
    from celery import Celery

    # Not the current app: shared tasks resolve through the current app, and this one knows
    # neither the suite's broker nor its routes.
    sender = Celery("fault-injection", set_as_current=False)
    try:
        with sender.connection_for_write(broker_url) as connection:
            sender.send_task(name, queue=queue, connection=connection)
    finally:
        sender.close()
