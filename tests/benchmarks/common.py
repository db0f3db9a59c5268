"""What every benchmark shares: a production-like Django setup, timing, and the printed table.

Machines here are noisy, so a benchmark compares against a baseline measured in the same run, on
the same inputs, and reports each figure as the median of several rounds.
"""

import os
import platform
import socket
import statistics
import subprocess
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

BENCH_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scrapannot_bench"
BENCH_CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
BENCH_SECRET_KEY = "bench-only-secret-not-for-production-0123456789-abcdefgh"  # noqa: S105


def bench_environment() -> dict[str, str]:
    """Settings the benchmarks run under, for this process and any server they start: DEBUG off
    (as in production; DEBUG on records every SQL query) and a database of their own."""
    return {
        "DJANGO_SETTINGS_MODULE": "scrapannot.settings",
        "DATABASE_URL": os.environ.get("DATABASE_URL", BENCH_DATABASE_URL),
        # Work queued by an ingest goes to a broker as in production, not run inside the request.
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", BENCH_CELERY_BROKER_URL),
        "DEBUG": "0",
        # DEBUG=0 refuses a short key, such as the test suite's.
        "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY", BENCH_SECRET_KEY),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        # The same silence for the servers a benchmark starts.
        "PYTHONWARNINGS": "ignore:No directory at:UserWarning",
    }


def setup_django(**extra_env: str) -> None:
    """Call before importing models. `bin/bench` has created and migrated the database."""
    os.environ.update(bench_environment() | extra_env)
    # whitenoise looks for collected static files; the benchmarks serve none.
    warnings.filterwarnings("ignore", "No directory at", UserWarning)
    import django

    django.setup()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass
class Measurement:
    """One figure: the seconds each round took to process `items` items."""

    name: str
    items: int
    seconds: list[float]
    # False for a figure derived from other medians, whose per-round spread means nothing.
    spread: bool = True

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def per_item(self) -> float:
        return self.median / self.items

    @property
    def rate(self) -> float:
        return self.items / self.median if self.median else float("inf")


def ratio(measured: Measurement, baseline: Measurement) -> float:
    """Ratio of the medians: what the tables show."""
    return measured.per_item / baseline.per_item


@dataclass(frozen=True)
class PairedRatio:
    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return (
            f"{self.median:.2f}x (median of per-round ratios; {self.low:.2f}x .. {self.high:.2f}x)"
        )


def paired_ratio(measured: Measurement, baseline: Measurement) -> PairedRatio:
    """Each round against its own baseline, then the median: load from elsewhere on the machine
    that comes and goes between rounds cancels out. The headline figure of a benchmark."""
    rounds = [
        (m / measured.items) / (b / baseline.items)
        for m, b in zip(measured.seconds, baseline.seconds, strict=True)
    ]
    return PairedRatio(statistics.median(rounds), min(rounds), max(rounds))


def describe_machine() -> str:
    import PIL
    from PIL import features

    turbo = "libjpeg-turbo" if features.check_feature("libjpeg_turbo") else "libjpeg"
    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, Pillow {PIL.__version__} ({turbo} {features.version('jpg')})"
    )


def print_table(
    title: str, rows: Sequence[Measurement], *, baseline: Measurement, unit: str = "frame"
) -> None:
    """Median time per item, its spread over rounds, items per second, and x baseline."""
    width = max(len(r.name) for r in rows)
    print(f"\n{title}")
    header = (
        f"{'':<{width}}  {'ms/' + unit:>9}  {'min..max over rounds':>21}  "
        f"{unit + 's/s':>9}  {'x baseline':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        low, high = (min(row.seconds) / row.items * 1e3, max(row.seconds) / row.items * 1e3)
        spread = f"{low:9.2f} .. {high:8.2f}" if row.spread else f"{'(derived)':>21}"
        print(
            f"{row.name:<{width}}  {row.per_item * 1e3:9.2f}  {spread}  "
            f"{row.rate:9.1f}  {ratio(row, baseline):9.2f}x"
        )


def wait_for_port(server: "subprocess.Popen[bytes]", port: int, *, timeout: float = 60) -> None:
    """Block until `server` accepts connections on `port`; raise if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
