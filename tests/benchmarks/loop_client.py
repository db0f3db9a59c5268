"""The annotator loop's load generator (bench_annotator_loop): 32 annotators, each on its own
keep-alive connection, repeating "next railcar, then submit a rating", or GET /healthz for the
in-run baseline."""

import http.client
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

NEXT, RATE = "/api/v1/assignments/next/", "/api/v1/assignments/{}/rating/"
GRADES = ["3A", "3A1", "3AH", "cast iron"]


class Http:
    """One keep-alive connection per annotator (gunicorn's sync workers close it after each
    response; http.client then opens a new one, and the latency includes the connect)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Token {token}"

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        payload = json.dumps(body).encode() if body is not None else b""
        for attempt in (1, 2):
            start = time.perf_counter()
            try:
                self.connection.request(method, path, body=payload, headers=self.headers)
                response = self.connection.getresponse()
                data = response.read()
                return response.status, data, (time.perf_counter() - start) * 1e3
            except (ConnectionError, http.client.HTTPException):
                # A kept-alive connection the server closed meanwhile. Both calls are safe to
                # repeat: "next" returns the lease held, a rating returns the first one.
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@dataclass
class Tally:
    """What one run saw, summed over its annotators."""

    seconds: float = 0.0
    pairs: int = 0
    ms: dict[str, list[float]] = field(default_factory=lambda: {"next": [], "rating": []})
    statuses: Counter = field(default_factory=Counter)
    double_clicks: int = 0
    double_click_mismatches: int = 0
    foreign: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def rate(self) -> float:
        """Pairs (or healthz answers) per second."""
        return self.pairs / self.seconds if self.seconds else 0.0

    def add(self, other: "Tally") -> None:
        with self.lock:
            self.pairs += other.pairs
            for name, values in other.ms.items():
                self.ms.setdefault(name, []).extend(values)
            self.statuses.update(other.statuses)
            self.double_clicks += other.double_clicks
            self.double_click_mismatches += other.double_click_mismatches
            self.foreign.update(other.foreign)


def annotate(
    http: Http, *, until: float, think: float, misbehave: bool, others: list[str], tally: Tally
) -> None:
    """Next, (think), rate, (think), until the clock runs out; misbehaving annotators also
    double-click each rating and try to rate an assignment of someone else's. Think times vary
    around their mean (0.5x to 1.5x) and start staggered: 32 people in lockstep would be a
    burst of 32 requests every second, not the load of 32 people."""
    mine, own = Tally(), set()
    rng = random.Random()
    time.sleep(rng.uniform(0, think))
    while time.perf_counter() < until:
        status, body, ms = http.call("POST", NEXT)
        mine.ms["next"].append(ms)
        mine.statuses[f"next {status}"] += 1
        if status != 200:
            break  # 204: the pool is empty for this annotator; anything else is an error
        uid = json.loads(body)["id"]
        time.sleep(think * rng.uniform(0.5, 1.5))
        rating = {
            "contamination_pct": f"{rng.uniform(0, 40):.1f}", "grade": rng.choice(GRADES),
            "seconds_spent": rng.randint(20, 300),
        }  # fmt: skip
        status, first, ms = http.call("POST", RATE.format(uid), rating)
        mine.ms["rating"].append(ms)
        mine.statuses[f"rating {status}"] += 1
        if status == 201:
            mine.pairs += 1
        if misbehave:
            again, second, ms = http.call("POST", RATE.format(uid), rating | {"grade": "3A"})
            mine.ms.setdefault("rating, double click", []).append(ms)
            mine.double_clicks += 1
            mine.double_click_mismatches += again != 200 or second != first
            foreign = [u for u in others[-64:] if u not in own]
            if foreign:
                status, _, ms = http.call("POST", RATE.format(rng.choice(foreign)), rating)
                mine.ms.setdefault("rating, foreign id", []).append(ms)
                mine.foreign[status] += 1
        own.add(uid)
        others.append(uid)
        time.sleep(think * rng.uniform(0.5, 1.5))
    tally.add(mine)


def healthz(http: Http, *, until: float, tally: Tally) -> None:
    mine = Tally()
    while time.perf_counter() < until:
        status, _, ms = http.call("GET", "/healthz")
        mine.ms.setdefault("healthz", []).append(ms)
        mine.statuses[f"healthz {status}"] += 1
        mine.pairs += status == 200
    tally.add(mine)


def run_load(
    port: int, tokens: list[str], *, seconds: float, think: float = 0.0, misbehaving: int = 0,
    baseline: bool = False,
) -> Tally:  # fmt: skip
    """All annotators at once (a barrier), each on its own connection, for `seconds`."""
    tally, others = Tally(), []
    barrier = threading.Barrier(len(tokens) + 1)
    clocks: dict[str, float] = {}

    def one(k: int, token: str) -> None:
        http = Http(port, token)
        barrier.wait()
        if baseline:
            healthz(http, until=clocks["until"], tally=tally)
        else:
            annotate(
                http, until=clocks["until"], think=think, misbehave=k < misbehaving,
                others=others, tally=tally,
            )  # fmt: skip

    threads = [threading.Thread(target=one, args=(k, t)) for k, t in enumerate(tokens)]
    for thread in threads:
        thread.start()
    clocks["until"] = time.perf_counter() + seconds
    start = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    tally.seconds = time.perf_counter() - start
    return tally


def warm_up(port: int, tokens: list[str]) -> float:
    """Seconds until every worker answers quickly. Each gunicorn worker imports the URLconf on
    its first request, and with it torch (labeling.annotation -> masks -> sam): seconds of CPU
    per worker, during which a gthread worker still accepts connections that then wait."""
    start, quiet = time.perf_counter(), 0
    while quiet < 2 and time.perf_counter() - start < 120:
        burst = run_load(port, tokens, seconds=1.0, baseline=True)
        quiet = quiet + 1 if max(burst.ms["healthz"], default=1e9) < 250 else 0
    run_load(port, tokens, seconds=1.0)  # the annotator path once, off the clock
    return time.perf_counter() - start
