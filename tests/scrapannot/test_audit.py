import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from scrapannot import audit
from scrapannot.models import AuditEvent
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db


def _append(n: int, actor=None) -> list[AuditEvent]:
    """Record n events and seal them, as the sequencer does within seconds."""
    events = [
        audit.record(action="test.event", actor=actor, payload={"n": i, "x": [1.5, "é", None]})
        for i in range(n)
    ]
    audit.seal_pending()
    for event in events:
        event.refresh_from_db()
    return events


def _tamper(sql: str, params: list) -> None:
    """What an attacker with the table owner's rights does: drop the guard, then edit."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE waits for none
            cursor.execute("ALTER TABLE scrapannot_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE scrapannot_auditevent ENABLE TRIGGER USER")


def test_events_form_a_chain_that_verifies(annotator):
    events = _append(5, actor=annotator)

    report = audit.verify_chain()

    assert report.ok and report.events == 5
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert report.head_hash == events[-1].hash
    assert events[0].actor_label == "ann"


def test_postgresql_refuses_to_update_or_delete_an_event(on_postgresql):
    event = _append(1)[0]

    for sql in (
        "UPDATE scrapannot_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM scrapannot_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get().action == "test.event"


def test_verify_names_the_first_edited_event(capsys):
    events = _append(6)
    _tamper(
        "UPDATE scrapannot_auditevent SET payload = %s WHERE seq = 4",
        ['{"n": 99, "x": [1.5, "é", null]}'],
    )

    report = audit.verify_chain()

    assert not report.ok
    assert report.broken_seq == 4
    assert "edited" in report.reason
    assert report.head_seq == 3 and report.head_hash == events[2].hash
    with pytest.raises(CommandError, match="broken at event #4"):
        call_command("audit_verify")


def test_verify_catches_an_edited_actor_or_time():
    _append(3)
    _tamper("UPDATE scrapannot_auditevent SET actor_label = 'someone' WHERE seq = 2", [])

    assert audit.verify_chain().broken_seq == 2


def test_verify_catches_a_deleted_event():
    _append(5)
    _tamper("DELETE FROM scrapannot_auditevent WHERE seq = 3", [])

    report = audit.verify_chain()

    assert not report.ok
    assert report.broken_seq == 3
    assert "gap" in report.reason


def test_verify_catches_a_deleted_event_even_when_the_sequence_is_renumbered():
    _append(5)
    _tamper("DELETE FROM scrapannot_auditevent WHERE seq = 3", [])
    # In two steps: one "seq = seq - 1" trips the unique constraint row by row whenever the
    # table happens to store seq 5 before seq 4.
    _tamper("UPDATE scrapannot_auditevent SET seq = seq + 1000000 WHERE seq > 3", [])
    _tamper("UPDATE scrapannot_auditevent SET seq = seq - 1000001 WHERE seq > 1000000", [])

    report = audit.verify_chain()

    assert report.broken_seq == 3
    assert "prev_hash" in report.reason


def test_deleting_the_newest_events_is_caught_against_an_anchor():
    events = _append(5)
    anchor = (events[-1].seq, events[-1].hash)
    _tamper("DELETE FROM scrapannot_auditevent WHERE seq >= 4", [])

    assert audit.verify_chain().ok  # consistent in itself: this is why anchors exist
    report = audit.verify_chain(anchor=anchor)

    assert not report.ok and report.broken_seq == 4
    with pytest.raises(CommandError, match="broken at event #4"):
        call_command("audit_verify", anchor=f"{anchor[0]}:{anchor[1]}")


def test_audit_verify_prints_the_head_when_the_chain_holds(capsys):
    events = _append(3)

    call_command("audit_verify")

    assert f"head 3:{events[-1].hash}" in capsys.readouterr().out


def test_audit_verify_rejects_a_malformed_anchor():
    with pytest.raises(CommandError, match="--anchor"):
        call_command("audit_verify", anchor="12;drop table")


def test_an_event_rolls_back_with_the_change_it_records():
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record(action="test.event")
        raise RuntimeError("the audited change failed")

    assert AuditEvent.objects.count() == 0
    event = audit.record(action="test.event")
    assert event.seq is None  # sealed after it commits, by the sequencer
    audit.seal_pending()
    event.refresh_from_db()
    assert event.seq == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_never_fork_the_chain(on_postgresql):
    def append() -> None:
        for i in range(10):
            audit.record(action="test.concurrent", payload={"i": i})

    run_at_once(append, threads=8)
    audit.seal_pending()

    report = audit.verify_chain()
    assert report.ok and report.events == 80


def test_pages_walk_only_the_events_after_the_last_good_full_check():
    _append(5)
    audit.verify_and_record()  # the nightly check: event #6 names head #5
    _append(3)

    report = audit.verify_since_checkpoint()

    assert report.ok
    assert (report.from_seq, report.events, report.head_seq) == (6, 4, 9)
    assert report.checkpoint_at is not None
    assert report.head_hash == audit.verify_chain().head_hash


def test_the_checkpoint_catches_new_tampering_and_an_edited_checkpoint_event():
    _append(4)
    audit.verify_and_record()  # names head #4
    later = _append(2)
    edit = "UPDATE scrapannot_auditevent SET payload = %s WHERE seq = %s"
    _tamper(edit, ['{"n": 99}', later[0].seq])
    assert audit.verify_since_checkpoint().broken_seq == later[0].seq

    _tamper(edit, ['{"n": 98}', 4])  # the checkpoint's own event
    report = audit.verify_since_checkpoint()
    assert (report.ok, report.broken_seq) == (False, 4)


def test_tampering_before_the_checkpoint_waits_for_the_next_full_check():
    _append(4)
    audit.verify_and_record()
    _tamper("UPDATE scrapannot_auditevent SET payload = %s WHERE seq = %s", ['{"n": 97}', 2])

    # The documented trade-off: pages do not walk what the last full check covered ...
    assert audit.verify_since_checkpoint().ok
    # ... the full walk (nightly, audit_verify, /audit/?full=1) does, and its verdict then
    # makes the pages walk everything again.
    audit.verify_and_record()
    report = audit.verify_since_checkpoint()
    assert (report.ok, report.from_seq, report.broken_seq) == (False, 1, 2)


def test_without_a_good_full_check_pages_walk_everything():
    _append(3)
    assert audit.verify_since_checkpoint().from_seq == 1
    _tamper("UPDATE scrapannot_auditevent SET payload = %s WHERE seq = %s", ['{"n": 7}', 2])
    audit.verify_and_record()  # records audit.broken
    _append(1)

    report = audit.verify_since_checkpoint()
    assert (report.ok, report.from_seq, report.broken_seq) == (False, 1, 2)
