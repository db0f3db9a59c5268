"""The audit sequencer: requests record events with no lock on the chain; one sequencer at a
time seals them, in id order, each exactly once, into a chain with no gap and no fork."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from scrapannot import audit
from scrapannot.audit_seal import seal_batch
from scrapannot.models import AuditEvent
from tests.concurrency import run_at_once

ROOT = Path(__file__).resolve().parents[2]


def _chain() -> list[AuditEvent]:
    return list(AuditEvent.objects.order_by("seq"))


def _assert_one_chain(events: int) -> None:
    """Every event sealed once: seq 1..n with no gap, each linked to the one before (no fork)."""
    chain = _chain()
    assert len(chain) == events
    assert [e.seq for e in chain] == list(range(1, events + 1))
    assert chain[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(chain, chain[1:], strict=False))
    assert len({e.prev_hash for e in chain}) == events  # no two events after the same one
    report = audit.verify_chain()
    assert report.ok and report.events == events


def _tamper(*statements: tuple[str, list]) -> None:
    """The table owner's rights: drop the guard, edit, put the guard back."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE scrapannot_auditevent DISABLE TRIGGER USER")
        for sql, params in statements:
            cursor.execute(sql, params)
        cursor.execute("ALTER TABLE scrapannot_auditevent ENABLE TRIGGER USER")


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_make_one_chain_with_no_gap_and_no_fork(on_postgresql):
    def write() -> None:
        for i in range(25):
            audit.record(action="test.concurrent", payload={"i": i})

    run_at_once(write, threads=8)
    assert AuditEvent.objects.filter(seq__isnull=True).count() == 200  # no lock, no seal

    audit.seal_pending()

    _assert_one_chain(200)


@pytest.mark.django_db(transaction=True)
def test_writers_and_sequencers_running_together_still_make_one_chain(on_postgresql):
    turn = iter(range(100))

    def work() -> None:
        if next(turn) < 2:  # two sequencers, sealing while six threads write
            for _ in range(30):
                audit.seal_pending(wait=False, batch_size=7)
                time.sleep(0.005)
            return
        for i in range(30):
            audit.record(action="test.concurrent", payload={"i": i})

    run_at_once(work, threads=8)
    audit.seal_pending()

    _assert_one_chain(180)
    # Sealed in id order within each batch, so the chain keeps the order of insertion wherever
    # the events had committed when a batch was read.
    ids = [e.pk for e in _chain()]
    assert sum(1 for a, b in zip(ids, ids[1:], strict=False) if b < a) < 30


@pytest.mark.django_db(transaction=True)
def test_two_sequencers_started_at_once_never_both_seal_an_event(on_postgresql):
    for i in range(400):
        audit.record(action="test.event", payload={"i": i})

    sealed = run_at_once(lambda: audit.seal_pending(wait=False, batch_size=20), threads=4)

    # A sequencer that finds the lock taken leaves the rest to the one holding it, which goes on
    # to the end: between them they sealed every event once, and nothing is left.
    assert sum(sealed) == 400 and max(sealed) > 0
    assert audit.seal_pending() == 0
    _assert_one_chain(400)


@pytest.mark.django_db(transaction=True)
def test_a_sequencer_that_finds_another_sealing_leaves_the_events_to_it(on_postgresql):
    for i in range(5):
        audit.record(action="test.event", payload={"i": i})
    holding, release = threading.Event(), threading.Event()

    def first_sequencer() -> None:
        try:
            with transaction.atomic():
                seal_batch(limit=2)
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=first_sequencer)
    thread.start()
    assert holding.wait(10)
    try:
        assert seal_batch(wait=False) is None
        assert audit.seal_pending(wait=False) == 0
    finally:
        release.set()
        thread.join()

    assert AuditEvent.objects.filter(seq__isnull=False).count() == 2
    assert audit.seal_pending() == 3
    _assert_one_chain(5)


@pytest.mark.django_db(transaction=True)
def test_a_sequencer_killed_mid_seal_and_restarted_seals_each_event_once(on_postgresql):
    for i in range(300):
        audit.record(action="test.event", payload={"i": i})
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    # A row lock on the 150th event stops the sequencer inside its second batch of 100, after
    # the first has committed, until the test lets go.
    locked, release = threading.Event(), threading.Event()

    def hold_row() -> None:
        try:
            with transaction.atomic():
                list(AuditEvent.objects.select_for_update().filter(id=ids[149]))
                locked.set()
                release.wait(60)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_row)
    holder.start()
    assert locked.wait(10)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
    }
    code = (
        "import django; django.setup(); from scrapannot import audit; "
        "audit.seal_pending(batch_size=100)"
    )
    sequencer = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "scrapannot.settings"},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _sequencer_waits_on_the_row():
            time.sleep(0.05)
        assert _sequencer_waits_on_the_row(), "the sequencer never reached its second batch"
        first_batch = dict(AuditEvent.objects.filter(seq__isnull=False).values_list("id", "hash"))
        assert sorted(first_batch) == ids[:100]
        sequencer.send_signal(signal.SIGKILL)
        sequencer.wait(10)
    finally:
        release.set()
        holder.join()
        if sequencer.poll() is None:
            sequencer.kill()

    # The killed batch rolled back; a new sequencer waits for the orphaned backend's lock to go,
    # then seals the rest, after the first batch, each event once.
    assert audit.seal_pending() == 200
    _assert_one_chain(300)
    kept = dict(AuditEvent.objects.filter(id__in=ids[:100]).values_list("id", "hash"))
    assert kept == first_batch
    assert [e.pk for e in _chain()] == ids


def _sequencer_waits_on_the_row() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND wait_event = 'transactionid' AND query LIKE 'UPDATE scrapannot_auditevent%%'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db
def test_the_trigger_allows_only_the_sealing_of_an_unsealed_event(on_postgresql):
    event = audit.record(action="test.event", payload={"n": 1})
    refused = [
        ("UPDATE scrapannot_auditevent SET action = 'x' WHERE id = %s", [event.pk]),
        ("UPDATE scrapannot_auditevent SET payload = '{\"n\": 2}' WHERE id = %s", [event.pk]),
        ("UPDATE scrapannot_auditevent SET seq = 1 WHERE id = %s", [event.pk]),  # half a seal
        (
            "UPDATE scrapannot_auditevent SET seq = 1, prev_hash = 'a', hash = 'b', "
            "actor_label = 'someone' WHERE id = %s",
            [event.pk],
        ),
        ("DELETE FROM scrapannot_auditevent WHERE id = %s", [event.pk]),
    ]
    for sql, params in refused:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, params)

    assert audit.seal_pending() == 1
    event.refresh_from_db()
    for sql, params in [
        ("UPDATE scrapannot_auditevent SET seq = 7, hash = 'c' WHERE id = %s", [event.pk]),
        (
            "UPDATE scrapannot_auditevent SET seq = NULL, prev_hash = NULL, hash = NULL "
            "WHERE id = %s",
            [event.pk],
        ),  # fmt: skip
        ("DELETE FROM scrapannot_auditevent WHERE id = %s", [event.pk]),
    ]:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, params)
    assert AuditEvent.objects.get().seq == 1 and audit.verify_chain().ok


def _sealed(n: int) -> list[AuditEvent]:
    for i in range(n):
        audit.record(action="test.event", payload={"n": i})
    audit.seal_pending()
    return _chain()


@pytest.mark.django_db
def test_tampering_with_a_sealed_event_is_detected(on_postgresql):
    events = _sealed(5)
    _tamper(
        ("UPDATE scrapannot_auditevent SET payload = '{\"n\": 9}' WHERE id = %s", [events[2].pk])
    )

    report = audit.verify_chain()

    assert (report.ok, report.broken_seq) == (False, 3) and "edited" in report.reason


@pytest.mark.django_db
def test_deleting_a_sealed_event_is_detected(on_postgresql):
    events = _sealed(5)
    _tamper(("DELETE FROM scrapannot_auditevent WHERE id = %s", [events[1].pk]))

    report = audit.verify_chain()

    assert (report.ok, report.broken_seq) == (False, 2) and "gap" in report.reason


@pytest.mark.django_db
def test_reordering_two_sealed_events_is_detected(on_postgresql):
    events = _sealed(5)
    # Swap the places of #2 and #3 (through a free number: seq is unique).
    _tamper(
        ("UPDATE scrapannot_auditevent SET seq = 1000 WHERE id = %s", [events[1].pk]),
        ("UPDATE scrapannot_auditevent SET seq = 2 WHERE id = %s", [events[2].pk]),
        ("UPDATE scrapannot_auditevent SET seq = 3 WHERE id = %s", [events[1].pk]),
    )

    report = audit.verify_chain()

    assert (report.ok, report.broken_seq) == (False, 2)


@pytest.mark.django_db
def test_sealing_again_changes_nothing_and_new_events_extend_the_chain(on_postgresql):
    events = _sealed(3)
    assert audit.seal_pending() == 0
    audit.record(action="test.event", payload={"n": 3})

    assert audit.seal_pending() == 1

    chain = _chain()
    assert [(e.pk, e.hash) for e in chain[:3]] == [(e.pk, e.hash) for e in events]
    assert chain[3].prev_hash == events[2].hash
    assert audit.verify_chain().ok
