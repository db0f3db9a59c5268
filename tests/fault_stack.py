"""The production shape of README, all of its own, for fault injection: PostgreSQL, Redis,
gunicorn and a Celery worker (queues celery and quality), with a plant token granted lines
L1-L6. Used by the fault
tests and `bin/bench faults`."""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.benchmarks.common import BENCH_SECRET_KEY
from tests.celery_worker import Worker
from tests.faults import ROOT, Gunicorn, OwnPostgres, OwnRedis, send_task

ACTIVE = ("ingested", "checking", "rated")  # states that owe a task
TOKEN_SCRIPT = """
import django; django.setup()
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
user = User.objects.create_user("plant-faults")
user.groups.add(Group.objects.get_or_create(name="plant system")[0])
from labeling.lines import grant
from labeling.models import Line
for name in ("L1", "L2", "L3", "L4", "L5", "L6"):
    line = Line.objects.get_or_create(name=name)[0]
    grant(actor=None, user=user, line=line, permission="post_unloadings")
print(Token.objects.create(user=user).key)
"""


ANNOTATORS_SCRIPT = """
import django; django.setup()
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
group = Group.objects.get_or_create(name="annotator")[0]
for i in range(%d):
    user = User.objects.create_user(f"rater-faults-{i}")
    user.groups.add(group)
    print(Token.objects.create(user=user).key)
"""


class Stack:
    def __init__(self, folder: Path, *, reconcile_after_s: int = 3, web_workers: int = 2) -> None:
        self.folder = folder
        self.pg = OwnPostgres()
        self.redis = OwnRedis()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_"))},
            "DJANGO_SETTINGS_MODULE": "scrapannot.settings",
            "DATABASE_URL": self.pg.url("scrapannot"),
            "CELERY_BROKER_URL": self.redis.url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "DEBUG": "0",
            "SECRET_KEY": BENCH_SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1",
            "MEDIA_ROOT": str(folder / "media"),
            "SCRAPANNOT_RECONCILE_AFTER": str(reconcile_after_s),
            "PYTHONWARNINGS": "ignore:No directory at:UserWarning",
        }
        self.web = Gunicorn(self.env, folder / "gunicorn.log", workers=web_workers)
        self.worker = Worker(self.env, folder / "worker.log")
        self.token = ""

    def start(self) -> None:
        self.pg.init()
        with psycopg.connect(self.pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE scrapannot")
        self.redis.start()
        self._manage("migrate", "--verbosity", "0")
        self.token = self._python(TOKEN_SCRIPT).strip().splitlines()[-1]
        self.web.start()
        self.worker.start(queues="celery,quality")

    def set_policy(self, key: str, value: object) -> None:
        self._python(
            "import django; django.setup()\n"
            "from scrapannot.policy import set_policy\n"
            f"set_policy(key={key!r}, value={value!r}, actor=None)\n"
        )

    def annotator_tokens(self, count: int) -> list[str]:
        """API tokens of `count` new annotators."""
        return self._python(ANNOTATORS_SCRIPT % count).split()[-count:]

    def stop(self) -> None:
        self.web.stop()
        self.worker.stop()
        self.redis.kill()
        self.pg.destroy()

    def _manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True, timeout=300
        )

    def _python(self, script: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=self.env, check=True, timeout=120,
            capture_output=True, text=True,
        )  # fmt: skip
        return result.stdout

    def query(self, sql: str) -> list[tuple]:
        with psycopg.connect(self.pg.url("scrapannot"), connect_timeout=5) as conn:
            return conn.execute(sql).fetchall()

    def statuses(self) -> dict[str, int]:
        rows = self.query("SELECT status, count(*) FROM labeling_railcar GROUP BY status")
        return dict(rows)

    def stuck(self) -> int:
        return sum(n for status, n in self.statuses().items() if status in ACTIVE)

    def duplicates(self) -> int:
        """Unloadings (railcar, line, start) stored more than once."""
        (row,) = self.query(
            "SELECT count(*) - count(DISTINCT (real_id, line, unloading_started_at)) "
            "FROM labeling_railcar"
        )
        return row[0]

    def audited(self, action: str) -> int:
        (row,) = self.query(
            f"SELECT count(*) FROM scrapannot_auditevent WHERE action = '{action}'"  # noqa: S608
        )
        return row[0]

    def recover(self, *, timeout: float = 120, every_s: float = 1.0) -> float:
        """Run the reconciler (beat's minute, shortened) until nothing is stuck; seconds taken."""
        return until(lambda: self.stuck() == 0, timeout=timeout, tick=lambda: self.reconcile(),
                     every_s=every_s)  # fmt: skip

    def reconcile(self) -> None:
        send_task(self.redis.url, "labeling.reconcile_railcars")


def until(
    condition: Callable[[], bool], *, timeout: float, tick: Callable[[], None], every_s: float
) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if condition():
                return time.monotonic() - start
            tick()
        except (psycopg.OperationalError, OSError):
            pass  # the fault is still on; try again
        time.sleep(every_s)
    raise AssertionError(f"not recovered after {timeout} s")
