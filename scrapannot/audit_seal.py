"""The sequencer: seals committed, unsealed audit events into the hash chain, in id order.

Requests insert their events with no lock on the chain (`scrapannot.audit.record`); one sequencer
at a time (a PostgreSQL advisory lock taken here and nowhere on the request path) gives each its
`seq`, `prev_hash` and `hash`. It runs from Celery beat every second
(`scrapannot.seal_audit_events`), from `manage.py audit_seal`, and on demand (tests, the
nightly verification). An event waits at most about `AUDIT_SEAL_MAX_DELAY_SECONDS`; an older
unsealed one is an alarm on the audit page and in `manage.py audit_verify`.

Each batch is one transaction: a sequencer killed mid-batch leaves its batch unsealed, and the
next one seals it. The UPDATE only touches rows still unsealed and must touch them all, and `seq`
and `hash` are unique, so even two sequencers without the lock could not fork the chain or seal
an event twice: the second would fail and roll back.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min
from django.utils import timezone

from scrapannot.audit_chain import GENESIS_HASH, digest_with
from scrapannot.models import AuditEvent

# An arbitrary constant: the advisory lock key held by the one sequencer sealing now.
SEQUENCER_LOCK_KEY = 0x5C4A_5EA1
BATCH_SIZE = 1000


class SealConflictError(RuntimeError):
    """Another sealer changed the rows this batch was sealing (rolled back, nothing sealed)."""


def _take_sequencer_lock(*, wait: bool) -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: one writer at a time anyway
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEQUENCER_LOCK_KEY])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEQUENCER_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def _write_seals(rows: list[tuple[int, int, str, str]]) -> int:
    """rows: (id, seq, prev_hash, hash). Returns how many unsealed rows were sealed."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement for the whole batch, the columns as arrays.
            cursor.execute(
                "UPDATE scrapannot_auditevent AS e SET seq = v.seq, prev_hash = v.prev_hash, "
                "hash = v.hash FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) "
                "AS v(id, seq, prev_hash, hash) WHERE e.id = v.id AND e.seq IS NULL",
                [list(column) for column in zip(*rows, strict=True)],
            )
            return cursor.rowcount
        sealed = 0
        for pk, seq, prev_hash, digest in rows:
            cursor.execute(
                "UPDATE scrapannot_auditevent SET seq = %s, prev_hash = %s, hash = %s "
                "WHERE id = %s AND seq IS NULL",
                [seq, prev_hash, digest, pk],
            )
            sealed += cursor.rowcount
        return sealed


def seal_batch(*, wait: bool = True, limit: int = BATCH_SIZE) -> int | None:
    """Seal up to `limit` committed unsealed events, oldest id first, in the caller's transaction
    if there is one (SQLite's inline sealing) or in a new one. None: another sequencer holds the
    lock and `wait` is False."""
    with transaction.atomic(savepoint=False):
        if not _take_sequencer_lock(wait=wait):
            return None
        # Read after the lock: the previous sequencer's batch has committed, so this is the head.
        head = (
            AuditEvent.objects.filter(seq__isnull=False)
            .order_by("-seq")
            .values_list("seq", "hash")
            .first()
        )
        seq, prev_hash = head if head is not None else (0, GENESIS_HASH)
        pending = list(AuditEvent.objects.filter(seq__isnull=True).order_by("id")[:limit])
        rows = []
        for event in pending:
            seq += 1
            digest = digest_with(event, seq=seq, prev_hash=prev_hash)
            rows.append((event.pk, seq, prev_hash, digest))
            prev_hash = digest
        if rows and _write_seals(rows) != len(rows):
            raise SealConflictError("an event of this batch was sealed meanwhile")
        return len(rows)


def seal_pending(*, wait: bool = True, batch_size: int = BATCH_SIZE) -> int:
    """Seal every event committed so far, one batch (one transaction) at a time; return how many.
    With `wait=False`, return 0 at once when another sequencer is sealing (it will get them)."""
    total = 0
    while True:
        sealed = seal_batch(wait=wait, limit=batch_size)
        if sealed is None:
            return total
        total += sealed
        if sealed < batch_size:
            return total


@dataclass(frozen=True)
class Backlog:
    """Events recorded but not sealed yet. `overdue`: the oldest waited beyond the bound."""

    count: int
    oldest_at: datetime | None
    max_delay_s: float
    now: datetime

    @property
    def oldest_age_s(self) -> float:
        return (self.now - self.oldest_at).total_seconds() if self.oldest_at else 0.0

    @property
    def overdue(self) -> bool:
        return self.oldest_at is not None and self.oldest_age_s > self.max_delay_s


def backlog() -> Backlog:
    found = AuditEvent.objects.filter(seq__isnull=True).aggregate(
        count=Count("id"), oldest=Min("created_at")
    )
    return Backlog(
        count=found["count"],
        oldest_at=found["oldest"],
        max_delay_s=float(settings.AUDIT_SEAL_MAX_DELAY_SECONDS),
        now=timezone.now(),
    )
