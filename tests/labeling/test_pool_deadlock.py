"""A lease that PostgreSQL picks as a deadlock victim is taken again, not answered with an
error (labeling.pool.next_assignment), on both paths."""

import threading
import time

import psycopg
import pytest
from django.db import connection

from labeling import pool
from tests.concurrency import raw_connection
from tests.fault_stack import until
from tests.labeling.factories import annotators, pool_railcar

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("pool_path")]
LOCK = "SELECT id FROM labeling_railcar WHERE id = %s FOR UPDATE"


def lock_waiters(watcher: psycopg.Connection) -> int:
    return watcher.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    ).fetchone()[0]


def wait_for(condition) -> None:
    until(condition, timeout=10, tick=lambda: None, every_s=0.02)


def test_a_lease_caught_in_a_lock_cycle_is_taken_again(on_postgresql):
    first = pool_railcar(raters=1, priority=2.0, with_files=False)
    second = pool_railcar(raters=1, priority=1.0, with_files=False)
    (a,) = annotators(1)
    filler, holder = raw_connection(), raw_connection()
    watcher = raw_connection(autocommit=True)
    holder.execute("SET statement_timeout = '20s'")
    # One transaction fills the first railcar, another holds the second: the lease finds every
    # candidate locked and waits for the first.
    filler.execute(LOCK, [first.pk])
    filler.execute("UPDATE labeling_railcar SET open_slots = 0 WHERE id = %s", [first.pk])
    holder.execute(LOCK, [second.pk])
    result: dict[str, object] = {}

    def lease() -> None:
        try:
            result["assignment"] = pool.next_assignment(annotator=a)
        except Exception as exc:  # noqa: BLE001 - reported below
            result["error"] = exc
        finally:
            connection.close()

    leasing = threading.Thread(target=lease)
    leasing.start()
    wait_for(lambda: lock_waiters(watcher) == 1)
    # The first railcar fills: the lease, now holding its lock, moves on to wait for the second.
    filler.commit()
    time.sleep(0.3)
    wait_for(lambda: lock_waiters(watcher) == 1)
    # The second's holder now wants the first: a cycle, which PostgreSQL breaks after
    # deadlock_timeout by rolling back the transaction that waited first (the lease).
    started = time.monotonic()
    holder.execute(LOCK, [first.pk])
    waited = time.monotonic() - started
    holder.commit()
    leasing.join(timeout=30)

    assert waited > 0.5  # the cycle formed: the holder waited for the lease to be rolled back
    assert "error" not in result, result.get("error")
    assert result["assignment"].railcar_id == second.pk
    for conn in (filler, holder, watcher):
        conn.close()
