"""Fault injection against the production shape (gunicorn, a Celery worker, PostgreSQL and
Redis, all of its own on free ports; the shared ones are never touched): Redis restarted with
tasks queued and requests in flight, PostgreSQL restarted under ingest load, a worker SIGKILLed
mid-check, and concurrent posts of one unloading. For each: requests sent, 5xx seen (during the
fault and after recovery), railcars stuck after recovery, duplicates, recovery time.

The reconciler's bound is shortened to 3 s and it runs every second (production: 660 s and
every minute), so recovery time here is the mechanism's, not the production period's.

    bin/bench faults
"""

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrapannot.settings")
os.environ.setdefault("SECRET_KEY", "bench-faults-process-only")  # this process serves nothing

import django  # noqa: E402

django.setup()  # the unloading builders import DRF's test client

from tests.fault_scenarios import (  # noqa: E402
    FaultReport,
    concurrent_pairs,
    postgres_restart,
    postgres_restart_under_rating_load,
    redis_restart,
    worker_killed_mid_check,
)
from tests.fault_stack import Stack  # noqa: E402

SCENARIOS = (
    concurrent_pairs,
    redis_restart,
    postgres_restart,
    postgres_restart_under_rating_load,
    worker_killed_mid_check,
)


def main() -> int:
    reports: list[FaultReport] = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as folder:
        stack = Stack(Path(folder))
        started = time.monotonic()
        stack.start()
        print(f"stack up in {time.monotonic() - started:.1f} s (PostgreSQL :{stack.pg.port}, "
              f"Redis :{stack.redis.port}, gunicorn :{stack.web.port})")  # fmt: skip
        try:
            for scenario in SCENARIOS:
                reports.append(scenario(stack))
        finally:
            stack.stop()
    print()
    print("| fault | requests | answers | 5xx | 5xx after recovery | stuck | duplicates | "
          "recovery |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    for r in reports:
        answers = ", ".join(f"{s}: {n}" for s, n in sorted(r.statuses.items()))
        print(f"| {r.fault} | {r.requests} | {answers} | {r.server_errors} | "
              f"{r.server_errors_after_recovery} | {r.stuck} | {r.duplicates} | "
              f"{r.recovery_s:.1f} s |")  # fmt: skip
    for r in reports:
        if r.ratings_answered >= 0:
            print(f"{r.fault}: {r.ratings_answered} ratings answered 201, "
                  f"{r.ratings_stored} stored")  # fmt: skip
    failed = [r for r in reports if r.stuck or r.duplicates or r.server_errors_after_recovery]
    failed += [r for r in reports if r.ratings_answered != r.ratings_stored]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
