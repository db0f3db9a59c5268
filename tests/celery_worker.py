"""A real Celery worker, in its own process, on the real Redis, against the test database.

Tests that use `celery_worker` must commit their data (`django_db(transaction=True)`): the worker
is another process and sees only committed rows.
"""

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from scrapannot.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, queues: str = "celery", app: str = "scrapannot") -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    app,
                    "worker",
                    "--pool",
                    "solo",
                    "--queues",
                    queues,
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],  # fmt: skip
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "ready." in self.log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"Celery worker did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL, as a crashed machine would: no chance to ack or clean up."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(condition: Callable[[], object], *, timeout: float = 60, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


@pytest.fixture
def celery_worker(transactional_db, tmp_path: Path) -> Iterator[Worker]:
    broker = os.environ.get("CELERY_BROKER_URL")
    if not broker:
        pytest.fail("CELERY_BROKER_URL must point at the test Redis (bin/test sets it)")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        # A killed worker's unacknowledged task returns to the queue after this long.
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
    }
    celery_app.conf.task_always_eager = False
    # Nothing left over from an earlier run: not queued messages, nor the unacknowledged ones of
    # a worker a test killed, which would come back to life here (and the railcar ids of a new
    # test database start over, so they could name this test's railcar). The test broker
    # database is the suite's own (bin/test).
    redis.Redis.from_url(broker).flushdb()
    worker = Worker(env, tmp_path / "worker.log")
    try:
        yield worker
    finally:
        worker.stop()
        celery_app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
