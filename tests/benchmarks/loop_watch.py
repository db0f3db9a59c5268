"""What the machine and PostgreSQL do while the annotator loop runs (bench_annotator_loop)."""

import os
import threading
from collections import Counter

import psycopg


class Watch:
    """While a run lasts: the machine's CPU use (/proc/stat) and what the bench database's
    backends are doing, sampled every 20 ms from pg_stat_activity: running, waiting for a lock
    (which kind), or idle in a transaction (waiting for Python, its locks held)."""

    def __init__(self) -> None:
        self.states: Counter = Counter()
        self.samples = 0
        self.oldest_unsealed_s = 0.0  # the longest an audit event was seen waiting for its seal
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def __enter__(self) -> "Watch":
        self._cpu = self._cpu_times()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        busy, total = (b - a for a, b in zip(self._cpu, self._cpu_times(), strict=True))
        self.cpu_busy = busy / total if total else float("nan")

    @staticmethod
    def _cpu_times() -> tuple[int, int]:
        try:
            with open("/proc/stat") as stat:
                values = [int(v) for v in stat.readline().split()[1:]]
        except OSError:
            return 0, 0
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    def _sample(self) -> None:
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as db:
            while not self._stop.wait(0.02):
                rows = db.execute(
                    "SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || "
                    "wait_event, 'running') ELSE state END FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend' AND state <> 'idle'"
                ).fetchall()
                self.states.update(state for (state,) in rows)
                self.samples += 1
                if self.samples % 25 == 0:  # every half second
                    (age,) = db.execute(
                        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) "
                        "FROM scrapannot_auditevent WHERE seq IS NULL"
                    ).fetchone()
                    self.oldest_unsealed_s = max(self.oldest_unsealed_s, float(age))

    @property
    def advisory_share(self) -> float:
        """Of the backends seen in a request, the share waiting on an advisory lock."""
        total = sum(self.states.values())
        return self.states["Lock:advisory"] / total if total else 0.0

    def __str__(self) -> str:
        total = sum(self.states.values()) or 1
        shares = ", ".join(f"{s} {n / total:.0%}" for s, n in self.states.most_common(5))
        return (
            f"machine CPU busy {self.cpu_busy:.0%}; database backends in a request: "
            f"{total / max(self.samples, 1):.1f} on average ({shares}); advisory lock "
            f"{self.advisory_share:.1%}; oldest unsealed audit event seen "
            f"{self.oldest_unsealed_s:.1f} s"
        )
