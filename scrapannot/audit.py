"""The tamper-evident audit trail: append events, verify the chain.

Every sealed event stores the SHA-256 of (previous event's hash + its own canonical content).
`record` only inserts the event, unsealed, in the caller's transaction: no lock on the chain, so
ratings, leases and masks do not queue behind one another. The sequencer
(`scrapannot.audit_seal`) seals committed events in id order within seconds; `seq` and `hash`
are unique, so the chain cannot fork. On SQLite (the first-run default, one writer at a time
anyway) `record` seals inline, in the same transaction (`AUDIT_SEAL_INLINE`).
"""

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, models, transaction
from django.utils import timezone

from scrapannot.audit_chain import (
    GENESIS_HASH,
    canonical_json,
    digest_of,
    event_digest,
)
from scrapannot.audit_seal import Backlog, backlog, seal_batch, seal_pending
from scrapannot.models import AuditEvent

__all__ = [
    "GENESIS_HASH",
    "SYSTEM",
    "Backlog",
    "ChainReport",
    "backlog",
    "canonical_json",
    "digest_of",
    "event_digest",
    "record",
    "seal_pending",
    "verify_and_record",
    "verify_chain",
    "verify_since_checkpoint",
]

SYSTEM = "system"


def record(
    *,
    action: str,
    actor: AbstractBaseUser | None = None,
    actor_label: str | None = None,
    obj: models.Model | None = None,
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Call it inside the transaction that does the audited change, so that
    the event and the change commit or roll back together. It takes no lock: the event is sealed
    into the chain after it commits (`seq` and `hash` stay None until then).

    With `AUDIT_SEAL_INLINE` (SQLite, no broker) it seals at once, and on PostgreSQL that holds
    the sequencer's lock until the transaction commits: take every row lock the transaction
    needs *before* the first `record`, or two transactions can deadlock (the "row locks first"
    comments at the callers)."""
    # Round-trip through JSON so the stored payload is plain JSON values.
    clean_payload = json.loads(canonical_json(payload or {}))
    label = actor_label or (actor.get_username() if actor is not None else SYSTEM)
    # No savepoint: the event belongs to the caller's transaction, and a failure here must roll
    # back the change it records anyway.
    with transaction.atomic(savepoint=False):
        event = AuditEvent(
            created_at=timezone.now(),
            actor_id=actor.pk if actor is not None else None,
            actor_label=label,
            action=action,
            object_type=obj._meta.label_lower if obj is not None else "",
            object_id=str(obj.pk) if obj is not None else "",
            payload=clean_payload,
        )
        _insert(event)
        if settings.AUDIT_SEAL_INLINE:
            seal_batch()
            event.refresh_from_db(fields=["seq", "prev_hash", "hash"])
    return event


# Written out for PostgreSQL: every lease and rating records an event, and compiling the ORM's
# INSERT cost more than running it. seq, prev_hash and hash stay NULL: unsealed.
_INSERT = """
    INSERT INTO scrapannot_auditevent
        (created_at, actor_id, actor_label, action, object_type, object_id, payload)
    VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)
    RETURNING id
"""


def _insert(event: AuditEvent) -> None:
    if connection.vendor != "postgresql":
        event.save(force_insert=True)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            [event.created_at, event.actor_id, event.actor_label, event.action,
             event.object_type, event.object_id, json.dumps(event.payload)],
        )  # fmt: skip
        (event.pk,) = cursor.fetchone()
    event._state.adding = False
    event._state.db = connection.alias


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int  # events walked
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""
    # Where the walk started. Above 1, the events before it were verified by the full check
    # recorded at `checkpoint_at` (see verify_since_checkpoint).
    from_seq: int = 1
    checkpoint_at: Any = None


def _events(after_seq: int = 0) -> Iterator[AuditEvent]:
    return AuditEvent.objects.filter(seq__gt=after_seq).order_by("seq").iterator(chunk_size=2000)


def verify_chain(
    *, anchor: tuple[int, str] | None = None, since: tuple[int, str] | None = None
) -> ChainReport:
    """Walk the chain from the first event (or from `since=(seq, hash)`, an event a full walk
    found good); report the first event that does not hold.

    Deleting the newest events leaves a shorter chain that is still consistent in itself; only an
    anchor recorded outside the database (`anchor=(seq, hash)` of a head seen earlier) catches it.
    """
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    if since is not None and since[0] > 0:
        start = AuditEvent.objects.filter(seq=since[0]).first()
        if start is None or start.hash != since[1] or digest_of(start) != since[1]:
            return ChainReport(
                ok=False,
                events=0,
                head_seq=since[0] - 1,
                head_hash="",
                broken_seq=since[0],
                reason="no longer the event the last full check verified (edited or deleted)",
                from_seq=since[0],
            )
        prev_hash, expected_seq = since[1], since[0] + 1
    for event in _events(after_seq=expected_seq - 1):
        count += 1
        problem = ""
        if event.seq != expected_seq:
            problem = f"sequence gap: expected #{expected_seq}, found #{event.seq}"
        elif event.prev_hash != prev_hash:
            problem = "prev_hash does not match the hash of the event before it"
        elif digest_of(event) != event.hash:
            problem = "content does not match its hash (edited)"
        if problem:
            return ChainReport(
                ok=False,
                events=count,
                head_seq=expected_seq - 1,
                head_hash=prev_hash,
                broken_seq=event.seq if event.seq == expected_seq else expected_seq,
                reason=problem,
                from_seq=since[0] + 1 if since else 1,
            )
        if anchor is not None and event.seq == anchor[0] and event.hash != anchor[1]:
            return ChainReport(
                ok=False,
                events=count,
                head_seq=event.seq,
                head_hash=event.hash,
                broken_seq=event.seq,
                reason="hash differs from the anchor recorded for this event",
            )
        prev_hash = event.hash
        expected_seq += 1
    head_seq = expected_seq - 1
    if anchor is not None and head_seq < anchor[0]:
        return ChainReport(
            ok=False,
            events=count,
            head_seq=head_seq,
            head_hash=prev_hash,
            broken_seq=head_seq + 1,
            reason=f"chain ends at #{head_seq} but the anchor names #{anchor[0]} (deleted)",
        )
    return ChainReport(
        ok=True,
        events=count,
        head_seq=head_seq,
        head_hash=prev_hash,
        from_seq=since[0] + 1 if since else 1,
    )


def verify_since_checkpoint() -> ChainReport:
    """For pages: walk only the events after the newest scheduled full check, when that check
    found the chain good; a full walk otherwise. A full walk costs about 40 us per event (a
    minute at a million events), too slow for a page; the nightly task walks everything, and
    its verdict, being in the chain, is itself verified by the walks that follow.

    Tampering with an event older than the checkpoint shows here only after the next full check
    (`manage.py audit_verify` runs one at any time)."""
    verdict = (
        AuditEvent.objects.filter(action__in=["audit.verified", "audit.broken"], seq__isnull=False)
        .order_by("-seq")
        .first()
    )
    if verdict is None or verdict.action != "audit.verified":
        return verify_chain()
    try:
        since = (int(verdict.payload["head_seq"]), str(verdict.payload["head_hash"]))
    except (KeyError, TypeError, ValueError):
        return verify_chain()
    report = verify_chain(since=since)
    return dataclasses.replace(report, checkpoint_at=verdict.created_at)


def verify_and_record() -> ChainReport:
    """The scheduled check: seal what has committed, verify the chain and leave the verdict in the
    chain itself, so the trail shows when it was last known good."""
    seal_pending()
    report = verify_chain()
    record(
        action="audit.verified" if report.ok else "audit.broken",
        payload={
            "events": report.events,
            "head_seq": report.head_seq,
            "head_hash": report.head_hash,
            "broken_seq": report.broken_seq,
            "reason": report.reason,
        },
    )
    seal_pending()  # the verdict is the pages' checkpoint from now on
    return report
