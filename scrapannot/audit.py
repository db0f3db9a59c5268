"""The tamper-evident audit trail: append events, verify the chain.

Every event stores the SHA-256 of (previous event's hash + its own canonical content). Appends are
serialized (a PostgreSQL advisory lock held to commit; SQLite's write lock) so the chain never
forks; `seq` is unique besides, so a lost race fails loudly instead of branching.
"""

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, models, transaction
from django.utils import timezone

from scrapannot.models import AuditEvent

GENESIS_HASH = "0" * 64
SYSTEM = "system"
# An arbitrary constant: the advisory lock key that serializes appends to the chain.
_CHAIN_LOCK_KEY = 0x5C4A_A0D1


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_digest(
    *,
    prev_hash: str,
    seq: int,
    created_at: Any,
    actor_id: int | None,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    payload: Any,
) -> str:
    content = canonical_json(
        {
            "seq": seq,
            "created_at": created_at.isoformat(),
            "actor_id": actor_id,
            "actor_label": actor_label,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "payload": payload,
        }
    )
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def record(
    *,
    action: str,
    actor: AbstractBaseUser | None = None,
    actor_label: str | None = None,
    obj: models.Model | None = None,
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Call it inside the transaction that does the audited change, so that
    the event and the change commit or roll back together.

    The chain's lock is held until that transaction commits: take every row lock the transaction
    needs *before* the first `record`, or two transactions can deadlock (one holding a row and
    waiting for the chain, the other holding the chain and waiting for the row)."""
    # Round-trip through JSON so the hash is computed over exactly what the database returns.
    clean_payload = json.loads(canonical_json(payload or {}))
    label = actor_label or (actor.get_username() if actor is not None else SYSTEM)
    object_type = obj._meta.label_lower if obj is not None else ""
    object_id = str(obj.pk) if obj is not None else ""
    # No savepoint: the event belongs to the caller's transaction, and a failure here must roll
    # back the change it records anyway (two queries fewer per audited action).
    with transaction.atomic(savepoint=False):
        _lock_chain()
        last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
        seq = last["seq"] + 1 if last else 1
        prev_hash = last["hash"] if last else GENESIS_HASH
        created_at = timezone.now()
        actor_id = actor.pk if actor is not None else None
        digest = event_digest(
            prev_hash=prev_hash,
            seq=seq,
            created_at=created_at,
            actor_id=actor_id,
            actor_label=label,
            action=action,
            object_type=object_type,
            object_id=object_id,
            payload=clean_payload,
        )
        return AuditEvent.objects.create(
            seq=seq,
            created_at=created_at,
            actor_id=actor_id,
            actor_label=label,
            action=action,
            object_type=object_type,
            object_id=object_id,
            payload=clean_payload,
            prev_hash=prev_hash,
            hash=digest,
        )


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


def digest_of(event: AuditEvent) -> str:
    """The hash an event's stored content gives (equal to `event.hash` unless edited)."""
    return event_digest(
        prev_hash=event.prev_hash,
        seq=event.seq,
        created_at=event.created_at,
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        payload=event.payload,
    )


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
        AuditEvent.objects.filter(action__in=["audit.verified", "audit.broken"])
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
    """The scheduled check: verify the chain and leave the verdict in the chain itself, so the
    trail shows when it was last known good."""
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
    return report
