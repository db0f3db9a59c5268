"""Faults injected into a `Stack` (tests/fault_stack.py), each returning what a client saw and
what was left afterwards. The fault tests assert on these; `bin/bench faults` prints them."""

import json
import threading
import time
from dataclasses import dataclass, field
from itertools import count

from tests.fault_stack import Stack
from tests.faults import http_call, post_unloading
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
    ratings_answered: int = -1  # ratings answered 201 (scenarios with annotators)
    ratings_stored: int = -1

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


NEXT, RATE = "/api/v1/assignments/next/", "/api/v1/assignments/{}/rating/"


def _annotator_turn(stack: Stack, report: FaultReport, token: str, rated: list[str]) -> None:
    """One "next railcar, then rate it" of an annotator; the uid of every rating answered 201."""
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    try:
        status, body = http_call(stack.web.port, "POST", NEXT, b"{}", headers)
    except OSError:
        status, body = 599, b""
    report.tally(status)
    if status != 200:
        time.sleep(0.2)  # no work (204), or the database is down (503): wait a little
        return
    uid = json.loads(body)["id"]
    rating = json.dumps({"contamination_pct": "4.0", "grade": "3A", "seconds_spent": 30})
    try:
        status = http_call(stack.web.port, "POST", RATE.format(uid), rating.encode(), headers)[0]
    except OSError:
        status = 599
    report.tally(status)
    if status == 201:
        rated.append(uid)


def postgres_restart_under_rating_load(
    stack: Stack, *, railcars: int = 6, annotators: int = 4, down_s: float = 3.0
) -> FaultReport:
    """PostgreSQL stopped and started while annotators lease and rate: every rating answered
    201 is stored once, no railcar gets more raters than it needs, no 500 once it is back, and
    the railcars completed meanwhile are aggregated (`stuck` counts `rated` ones left)."""
    report = FaultReport("PostgreSQL restarted under rating load")
    tokens = stack.annotator_tokens(annotators)
    # The test frames are noise JPEGs, which the blur check fails: let them into the pool.
    stack.set_policy("quality.min_sharpness", 0.0)
    for _ in range(railcars):
        post(stack, FaultReport("setup"), new_unloading(layers=3))
    stack.recover()  # every railcar checked: in the pool (or the attention list)
    stop = threading.Event()
    rated: list[str] = []

    def keep_rating(token: str) -> None:
        while not stop.is_set():
            _annotator_turn(stack, report, token, rated)

    threads = [threading.Thread(target=keep_rating, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    stack.pg.stop()
    time.sleep(down_s)
    stack.pg.start()
    started = time.monotonic()
    stop.set()
    for thread in threads:
        thread.join()
    before = report.server_errors
    for token in tokens:
        _annotator_turn(stack, report, token, rated)
    report.server_errors_after_recovery = report.server_errors - before
    _finish(stack, report, started)
    report.ratings_answered = len(rated)
    report.ratings_stored = stack.query("SELECT count(*) FROM labeling_rating")[0][0]
    (over,) = stack.query(
        "SELECT count(*) FROM labeling_railcar r WHERE (SELECT count(*) FROM labeling_rating x "
        "JOIN labeling_assignment a ON a.id = x.assignment_id WHERE a.railcar_id = r.id) "
        "> r.raters_needed"
    )
    report.duplicates += over[0] + len(rated) - len(set(rated))
    return report


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
