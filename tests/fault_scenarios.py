"""Faults injected into a `Stack` (tests/fault_stack.py), each returning what a client saw and
what was left afterwards. The fault tests assert on these; `bin/bench faults` prints them."""

import threading
import time
from dataclasses import dataclass, field
from itertools import count

from tests.fault_stack import Stack
from tests.faults import post_unloading
from tests.labeling.unloadings import Unloading, named_layers_unloading

_serial = count(1)


@dataclass
class FaultReport:
    fault: str
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_errors_after_recovery: int = 0
    stuck: int = -1
    duplicates: int = -1
    recovery_s: float = -1.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def tally(self, status: int) -> None:
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


def new_unloading(**kwargs: int) -> Unloading:
    n = next(_serial)
    return named_layers_unloading(railcar=f"FAULT-{n}", seed=10_000 + n, **kwargs)


def post(stack: Stack, report: FaultReport, unloading: Unloading) -> int:
    try:
        status = post_unloading(stack.web.port, stack.token, unloading.manifest, unloading.files)[0]
    except OSError:
        status = 599  # no answer at all
    report.tally(status)
    return status


def _finish(stack: Stack, report: FaultReport, started: float) -> FaultReport:
    stack.recover()
    report.recovery_s = time.monotonic() - started
    report.stuck = stack.stuck()
    report.duplicates = stack.duplicates()
    return report


def redis_restart(stack: Stack, *, queued: int = 6, during: int = 3) -> FaultReport:
    """Tasks queued (no worker running) are lost with Redis; requests posted while it is down."""
    report = FaultReport("Redis restarted with tasks queued and requests in flight")
    stack.worker.stop()
    for _ in range(queued):
        post(stack, report, new_unloading())
    stack.redis.kill()
    for _ in range(during):
        post(stack, report, new_unloading())
    stack.redis.start()
    started = time.monotonic()
    stack.worker.start(queues="celery,quality")
    return _finish(stack, report, started)


def postgres_restart(stack: Stack, *, down_s: float = 3.0, after: int = 4) -> FaultReport:
    """PostgreSQL stopped (immediate: connections cut) and started while clients keep posting;
    then requests after it is back, which must not fail."""
    report = FaultReport("PostgreSQL restarted under ingest load")
    stop = threading.Event()

    def keep_posting() -> None:
        while not stop.is_set():
            post(stack, report, new_unloading())

    poster = threading.Thread(target=keep_posting)
    poster.start()
    time.sleep(1.5)
    stack.pg.stop()
    time.sleep(down_s)
    stack.pg.start()
    started = time.monotonic()
    stop.set()
    poster.join()
    before = report.server_errors
    for _ in range(after):
        post(stack, report, new_unloading())
    report.server_errors_after_recovery = report.server_errors - before
    return _finish(stack, report, started)


def worker_killed_mid_check(stack: Stack) -> FaultReport:
    """SIGKILL a worker in the middle of a railcar's checks (a slowed worker, so there is a
    middle); another worker takes over. `stuck` counts the railcar's conclusion exactly once."""
    report = FaultReport("worker SIGKILLed mid-check")
    checked_before = stack.audited("quality.checked")
    stack.worker.stop()
    stack.worker.env = {**stack.env, "SLOW_WORKER_PAUSE_S": "0.3"}
    stack.worker.start(queues="celery,quality", app="tests.slow_worker")
    post(stack, report, new_unloading(layers=3, per_layer=4))
    deadline = time.monotonic() + 60
    while not stack.query("SELECT 1 FROM labeling_framecheck LIMIT 1 OFFSET 16"):
        if time.monotonic() > deadline:
            raise AssertionError("the slowed worker checked nothing")
        time.sleep(0.2)
    stack.worker.kill()
    started = time.monotonic()
    stack.worker.env = stack.env
    stack.worker.start(queues="celery,quality")
    _finish(stack, report, started)
    concluded_again = stack.audited("quality.checked") - checked_before
    report.duplicates += concluded_again - 1  # one conclusion expected, not two
    return report


def concurrent_pairs(stack: Stack, *, pairs: int = 10) -> FaultReport:
    """The same railcar/line/start posted at once with two manifests: 201 + 409, never two."""
    report = FaultReport(f"{pairs} pairs of one unloading with two manifests, posted at once")
    for _ in range(pairs):
        first = new_unloading(layers=1, per_layer=3)
        second = Unloading(
            manifest={**first.manifest, "camera": "OTHER-CAMERA"}, files=dict(first.files)
        )
        barrier = threading.Barrier(2)

        def send(unloading: Unloading, barrier: threading.Barrier) -> None:
            barrier.wait()
            post(stack, report, unloading)

        threads = [threading.Thread(target=send, args=(u, barrier)) for u in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return _finish(stack, report, time.monotonic())
