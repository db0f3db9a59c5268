"""The annotator loop under load: 32 annotators repeating "next railcar, then submit a rating".

The issue's aims, on PostgreSQL and a real WSGI server (gunicorn, as README's production section
runs it): 2,000 railcars in the pool, 32 annotators each repeating POST .../assignments/next/ then
POST .../assignments/<id>/rating/ with random values.

- closed loop, no think time: pairs per second (aim: ten times the 14.3 pairs/s Label Studio
  1.23.2 managed here (issue 13's figure), i.e. >= 145), p50/p95/p99 of each call;
- one second of think time between calls: p95 of each call (aim: under 30 ms);
- the share of PostgreSQL backends waiting on an advisory lock (aim: under 5 % with threaded
  workers), and how long audit events waited to be sealed by the sequencer (a subprocess
  running `manage.py audit_seal --every 1`, as beat does in production);
- misbehaving clients: a quarter of the annotators double-click every rating and try to rate an
  assignment that is someone else's;
- after every run the rules, read from the database: no railcar above N raters, none rated twice
  by one annotator, no slot above `raters_needed`, `open_slots` consistent, every double click
  answered with the first rating and every foreign id with 404.

Two in-run baselines: GET /healthz (one SELECT 1) on the same server and the same client under
the same closed loop, and the previous audit design (a config ending in `+lock`: every request
seals its own event, holding the chain's lock until it commits, `AUDIT_SEAL_INLINE=1`); 14.3
pairs/s is an external figure, printed for reference only. Each server
configuration gets a fresh pool of 2,000 railcars. Beside the figures it prints the SQL of each
call and, during each run, the machine's CPU use and what PostgreSQL's backends wait on. Run with
`bin/bench annotator_loop` (`--seconds`, `--think-seconds`,
`--configs gthread:4x4+lock,sync:4,gthread:2x8,gthread:4x4,gthread:8x4`).
"""

# ruff: noqa: E402 -- Django must be set up before the models are imported.

import argparse
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.common import describe_machine, setup_django, wait_for_port
from tests.benchmarks.loop_client import NEXT, RATE, Tally, run_load, warm_up
from tests.benchmarks.loop_watch import Watch

setup_django()

from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.db.models import Count, F, Max, Q
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from labeling.models import Assignment, Frame, Layer, Railcar, Rating
from scrapannot.audit import seal_pending, verify_chain
from scrapannot.celery import app as celery_app
from scrapannot.roles import Role

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFIX = "LOOP-"  # the benchmark's railcars; nothing else in the bench database is touched
RAILCARS, ANNOTATORS, RATERS = 2000, 32, 3
MATURE_SERVERS = 14.3  # pairs/s, issue 13's figure for Label Studio 1.23.2 (external)
AIM_PAIRS, AIM_P95_MS, AIM_ADVISORY_SHARE = 145.0, 30.0, 0.05


# --- the world ---------------------------------------------------------------------------------


def bench_annotators() -> list[tuple[User, str]]:
    group = Group.objects.get(name=Role.ANNOTATOR.value)
    people = []
    for i in range(ANNOTATORS):
        user, _ = User.objects.get_or_create(username=f"loop-annotator-{i:02d}")
        user.groups.add(group)
        people.append((user, Token.objects.get_or_create(user=user)[0].key))
    return people


def fresh_pool(*, railcars: int, people: list[User]) -> None:
    """Drop the previous run's railcars and assignments, then put `railcars` new ones in the pool
    (one layer of one eligible frame each: the loop never loads an image), and vacuum. Audit
    events stay: the trail is append-only."""
    mine = Q(railcar__real_id__startswith=PREFIX) | Q(annotator__in=people)
    with transaction.atomic():
        Rating.objects.filter(mine).delete()
        Assignment.objects.filter(mine).delete()
        Railcar.objects.filter(real_id__startswith=PREFIX).delete()
        run, now = uuid.uuid4().hex[:8], timezone.now()
        cars = Railcar.objects.bulk_create(
            Railcar(
                real_id=f"{PREFIX}{run}-{n:05d}", line="LOOP", camera="LOOP-CAM",
                fingerprint=hashlib.sha256(f"{run}-{n}".encode()).hexdigest(),
                unloading_started_at=now, unloading_ended_at=now, layer_source="manifest",
                status=Railcar.Status.IN_POOL, priority=1000.0, raters_needed=RATERS,
                open_slots=RATERS,
            )
            for n in range(railcars)
        )  # fmt: skip
        layers = Layer.objects.bulk_create(Layer(railcar=car, index=1) for car in cars)
        frames = Frame.objects.bulk_create(
            Frame(
                railcar=car, layer=layer, index=0, source_name=f"{car.real_id}_0.jpg",
                captured_at=now, camera="LOOP-CAM", declared_sha256="0" * 64, width=1920,
                height=1080, image_format="JPEG", quality=Frame.Quality.ELIGIBLE,
            )
            for car, layer in zip(cars, layers, strict=True)
        )  # fmt: skip
        for layer, frame in zip(layers, frames, strict=True):
            layer.keyframe = frame
        Layer.objects.bulk_update(layers, ["keyframe"], batch_size=500)
    # What autovacuum does in production (PostgreSQL's default; it is off on this machine's
    # server): each run updates every leased railcar, assignment and audit event, and without
    # it their dead rows pile up run after run, and every later run reads through them.
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) labeling_railcar, labeling_assignment, labeling_rating, "
            "labeling_layer, labeling_frame, scrapannot_auditevent"
        )


# --- the server --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    workers: int
    threads: int = 0  # 0: sync workers
    # The baseline: the previous design, each request sealing its event under the chain's lock.
    chain_lock: bool = False

    @classmethod
    def parse(cls, text: str) -> "ServerConfig":
        text, plus, _ = text.partition("+lock")
        kind, _, size = text.partition(":")
        if kind == "sync":
            return cls(workers=int(size), chain_lock=bool(plus))
        workers, _, threads = size.partition("x")
        return cls(workers=int(workers), threads=int(threads), chain_lock=bool(plus))

    def __str__(self) -> str:
        lock = ", chain lock held to commit (previous design)" if self.chain_lock else ""
        if not self.threads:
            return f"--workers {self.workers} (sync){lock}"
        return f"--workers {self.workers} --worker-class gthread --threads {self.threads}{lock}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(config: ServerConfig, *, app: str) -> Iterator[int]:
    """gunicorn as README's production section starts it, with this process's environment
    (bench database, DEBUG off, a broker nobody consumes). Its log (the 404s misbehaving clients
    provoke, any 500) goes to a file; errors are summed up when it stops."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", app, "--workers", str(config.workers)]
    if config.threads:
        command += ["--worker-class", "gthread", "--threads", str(config.threads)]
    command += ["--bind", f"127.0.0.1:{port}", "--backlog", "512", "--log-level", "warning"]
    env = {**os.environ, "AUDIT_SEAL_INLINE": "1" if config.chain_lock else "0"}
    sequencer_command = [sys.executable, "manage.py", "audit_seal", "--every", "1"]
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        # The sequencer, as beat runs it in production (every second).
        sequencer = subprocess.Popen(
            sequencer_command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log, env=env
        )
        try:
            wait_for_port(server, port)
            yield port
        finally:
            server.terminate()
            sequencer.terminate()
            server.wait(timeout=30)
            sequencer.wait(timeout=30)
            log.seek(0)
            errors = [line.strip() for line in log if "Error" in line or "DETAIL" in line]
            if errors:
                print(f"    server log: {len(errors)} error lines, e.g. " + " | ".join(errors[:3]))


# --- the rules ---------------------------------------------------------------------------------


def broken_rules(tally: Tally, *, ratings_before: int) -> list[str]:
    """Every rule the run broke, read from the database and from what the clients saw."""
    cars = Railcar.objects.filter(real_id__startswith=PREFIX)
    ratings = Rating.objects.filter(railcar__in=cars)
    holding = Assignment.objects.filter(railcar__in=cars, status__in=Assignment.HOLDING)
    per_car = cars.annotate(
        n_ratings=Count("ratings", distinct=True),
        n_holding=Count("assignments", filter=Q(assignments__status__in=Assignment.HOLDING),
                        distinct=True),
    )  # fmt: skip
    problems = {
        "railcars above N ratings": per_car.filter(n_ratings__gt=F("raters_needed")).count(),
        "railcars above N holders": per_car.filter(n_holding__gt=F("raters_needed")).count(),
        "railcars whose open_slots disagree with their holders": per_car.exclude(
            open_slots=F("raters_needed") - F("n_holding")
        ).count(),
        "(railcar, annotator) rated twice": ratings.values("railcar", "annotator")
        .annotate(n=Count("id")).filter(n__gt=1).count(),
        "(railcar, annotator) assigned twice": Assignment.objects.filter(railcar__in=cars)
        .values("railcar", "annotator").annotate(n=Count("id")).filter(n__gt=1).count(),
        "(railcar, slot) held twice": holding.values("railcar", "slot").annotate(n=Count("id"))
        .filter(n__gt=1).count(),
        "slots above raters_needed": holding.filter(slot__gt=F("railcar__raters_needed")).count(),
        "rated railcars without N ratings": per_car.filter(status="rated")
        .exclude(n_ratings=F("raters_needed")).count(),
        "ratings stored != 201 answers": abs(
            ratings.count() - ratings_before - tally.statuses["rating 201"]
        ),
        "double clicks not answered 200 with the first rating": tally.double_click_mismatches,
        "foreign ids not answered 404": sum(n for s, n in tally.foreign.items() if s != 404),
        "server errors (5xx)": sum(n for k, n in tally.statuses.items() if k[-3:] >= "500"),
    }  # fmt: skip
    max_ratings = per_car.aggregate(m=Max("n_ratings"))["m"]
    print(
        f"    rules: max ratings per railcar {max_ratings} (N = {RATERS}); "
        f"{ratings.count()} ratings on {per_car.filter(n_ratings__gt=0).count()} railcars; "
        f"{sum(tally.foreign.values())} foreign POSTs -> {dict(tally.foreign)}; "
        f"{tally.double_clicks} double clicks"
    )
    return [f"{name}: {count}" for name, count in problems.items() if count]


# --- reporting ---------------------------------------------------------------------------------


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (values[0],) * 3 if values else (float("nan"),) * 3
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), cuts[94], cuts[98]


def print_calls(tally: Tally) -> None:
    for name, values in tally.ms.items():
        if values:
            p50, p95, p99 = percentiles(values)
            print(
                f"    {name:<22} {len(values):6d} calls  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  "
                f"p99 {p99:7.1f} ms"
            )
    print(f"    statuses: {dict(sorted(tally.statuses.items()))}")


def queries_per_call(tokens: list[str]) -> None:
    """SQL per call, in this process through the same middleware and views (no HTTP)."""
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {tokens[0]}")
    rating = {"contamination_pct": "5.0", "grade": "3A", "seconds_spent": 40}
    captured: dict[str, list[dict]] = {}

    def capture(name: str, path: str, body: dict | None = None, status: int = 200) -> bytes:
        with CaptureQueriesContext(connection) as queries:
            response = client.post(path, body, content_type="application/json")
        assert response.status_code == status, response.content
        # Copied now: the next request outside a capture empties the connection's query log.
        captured[name] = list(queries.captured_queries)
        return response.content

    uid = json.loads(capture("next, new lease", NEXT))["id"]
    capture("rating", RATE.format(uid), rating, status=201)
    capture("next, new lease, again", NEXT)
    capture("next, lease already held", NEXT)
    print("\nSQL per call: " + ", ".join(f"{name} {len(q)}" for name, q in captured.items()))
    for name in ("next, new lease", "rating"):
        print(f"  {name}:")
        for query in captured[name]:
            print(f"    {query['time']:>6}s  {' '.join(query['sql'].split())[:110]}")


# --- the run -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each closed-loop run")
    parser.add_argument("--think-seconds", type=float, default=15.0, help="the think-time run")
    parser.add_argument(
        "--configs", default="gthread:4x4+lock,sync:4,gthread:2x8,gthread:4x4,gthread:8x4"
    )
    parser.add_argument("--app", default="scrapannot.wsgi", help="WSGI module (experiments)")
    args = parser.parse_args()
    configs = [ServerConfig.parse(c) for c in args.configs.split(",")]
    print(f"annotator loop benchmark: {describe_machine()}")
    print(f"{RAILCARS} railcars in the pool, N = {RATERS}, {ANNOTATORS} annotators")
    people = bench_annotators()
    users, tokens = [u for u, _ in people], [t for _, t in people]
    fresh_pool(railcars=RAILCARS, people=users)
    queries_per_call(tokens)
    failures: list[str] = []
    results: dict[str, dict[str, Tally]] = {}
    watches: dict[str, Watch] = {}
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min)")

    def ratings() -> int:
        return Rating.objects.filter(railcar__real_id__startswith=PREFIX).count()

    def checked(label: str, tally: Tally, *, ratings_before: int) -> None:
        problems = broken_rules(tally, ratings_before=ratings_before)
        failures.extend(f"{label}: {p}" for p in problems)
        print(f"    rules broken: {'; '.join(problems) if problems else 'none'}")

    for config in configs:
        print(f"\ngunicorn scrapannot.wsgi {config}")
        fresh_pool(railcars=RAILCARS, people=users)
        runs = results[str(config)] = {}
        with gunicorn(config, app=args.app) as port:
            print(f"  workers ready after {warm_up(port, tokens):.1f} s")
            runs["healthz"] = run_load(port, tokens, seconds=args.seconds / 2, baseline=True)
            # Misbehaving: a quarter of the annotators double-click and rate foreign ids.
            for name, think, misbehaving in (
                ("closed loop", 0.0, 0), ("think time", 1.0, 0),
                ("misbehaving", 0.0, ANNOTATORS // 4),
            ):  # fmt: skip
                before = ratings()
                seconds = args.think_seconds if think else args.seconds
                seconds = seconds / 2 if misbehaving else seconds
                with Watch() as watch:
                    runs[name] = tally = run_load(
                        port, tokens, seconds=seconds, think=think, misbehaving=misbehaving
                    )
                watches[f"{config}/{name}"] = watch
                print(
                    f"  {name}: {tally.rate:.1f} pairs/s over {tally.seconds:.1f} s "
                    f"(load average {os.getloadavg()[0]:.1f})"
                )
                print_calls(tally)
                print(f"    {watch}")
                checked(f"{config}, {name}", tally, ratings_before=before)
            health = runs["healthz"]
            print(f"  baseline GET /healthz, same closed loop: {health.rate:.1f} requests/s")
            print_calls(health)
    celery_app.control.purge()  # nothing consumes the benchmark's broker
    seal_pending()
    chain = verify_chain()
    print(f"\naudit chain after the runs, all sealed: ok {chain.ok}, {chain.events} events")
    if not chain.ok:
        failures.append(f"audit chain broken at #{chain.broken_seq}: {chain.reason}")
    summarize(results, failures, watches)


def summarize(
    results: dict[str, dict[str, Tally]], failures: list[str], watches: dict[str, Watch]
) -> None:
    print("\nSummary (closed loop: pairs/s; 1 s think time: p95 of each call)")
    baseline = next((r["closed loop"].rate for n, r in results.items() if "previous" in n), None)
    for name, runs in results.items():
        loop, health, think = runs["closed loop"], runs["healthz"], runs["think time"]
        p95 = {call: percentiles(think.ms[call])[1] for call in ("next", "rating")}
        watch = watches[f"{name}/closed loop"]
        versus = f", {loop.rate / baseline:.2f}x the chain-lock baseline" if baseline else ""
        print(
            f"  {name}\n    {loop.rate:6.1f} pairs/s{versus}; healthz {health.rate:6.0f} req/s "
            f"(pairs/healthz {loop.rate / health.rate:.3f}); think p95: next {p95['next']:5.1f}"
            f" ms, rating {p95['rating']:5.1f} ms; advisory-lock waits "
            f"{watch.advisory_share:.1%} of backends in a request; oldest unsealed event seen "
            f"{max(w.oldest_unsealed_s for k, w in watches.items() if k.startswith(name)):.1f} s"
        )
    best = max(results, key=lambda name: results[name]["closed loop"].rate)
    pairs = results[best]["closed loop"].rate
    verdict = "meets" if pairs >= AIM_PAIRS else "MISSES"
    print(
        f"  best closed loop ({best}): {pairs:.1f} pairs/s = {pairs / MATURE_SERVERS:.1f}x the "
        f"14.3 pairs/s of Label Studio 1.23.2 (issue 13's figure, not measured here); "
        f"aim >= {AIM_PAIRS:.0f}: {verdict}"
    )
    for name in results:
        if "gthread" in name and "previous" not in name:
            share = watches[f"{name}/closed loop"].advisory_share
            verdict = "meets" if share < AIM_ADVISORY_SHARE else "MISSES"
            print(f"  advisory-lock waits, {name}: {share:.1%}; aim < 5 %: {verdict}")
    for name, runs in results.items():
        think = runs["think time"]
        worst = max(percentiles(think.ms[call])[1] for call in ("next", "rating"))
        verdict = "meets" if worst < AIM_P95_MS else "MISSES"
        print(f"  think time, {name}: worst p95 {worst:.1f} ms; aim < {AIM_P95_MS:.0f}: {verdict}")
    print(f"  rules: {'BROKEN: ' + '; '.join(failures) if failures else 'never broken'}")


if __name__ == "__main__":
    main()
