"""Re-enqueue the work a railcar's status says it is owed, when its task was lost.

The state of a railcar, not a queue, is the record of what is left to do: `ingested` and
`checking` owe a quality check, `rated` owes an aggregation. A broker restart loses queued
messages, a worker killed mid-task holds its message until the visibility timeout, and an
enqueue refused after a commit is only logged (`scrapannot.enqueue`). Beat runs this every minute;
a railcar that has waited longer than `RECONCILE_AFTER_S` gets its signal sent again.

Chosen over a transactional outbox because it also heals messages lost after they left an outbox
(a Redis restart without persistence, a dead worker) and needs no write in every transaction.
Re-sending is safe because every task it starts is a no-op once its work is done
(`pipeline.check_railcar` skips concluded railcars, aggregation compares a fingerprint).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, Max, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest
from django.dispatch import Signal
from django.utils import timezone

from labeling.live_ingest import BadAppend, close_unloading
from labeling.models import Railcar
from labeling.signals import railcar_rated, unloading_ingested

logger = logging.getLogger(__name__)

Status = Railcar.Status
OWED: dict[str, Signal] = {
    Status.INGESTED: unloading_ingested,
    Status.CHECKING: unloading_ingested,
    Status.RATED: railcar_rated,
}
BATCH = 500  # per run; the next minute takes the rest


def waiting_since() -> Greatest:
    """When the railcar started waiting: its ingest, its last rating, or the last nudge."""
    return Greatest(
        "created_at",
        Coalesce(Max("ratings__submitted_at"), "created_at"),
        Coalesce("nudged_at", "created_at"),
        output_field=DateTimeField(),
    )


def stuck_railcars(*, now: datetime, after: timedelta) -> QuerySet[Railcar]:
    return (
        Railcar.objects.filter(status__in=OWED)
        .annotate(since=waiting_since())
        .filter(since__lt=now - after)
        .order_by("since")
    )


def reconcile_railcars(*, now: datetime | None = None, after: timedelta | None = None) -> dict:
    """Send again the signal of every railcar stuck in a state that owes a task; return the
    count per status."""
    now = now or timezone.now()
    if after is None:
        after = timedelta(seconds=settings.SCRAPANNOT["RECONCILE_AFTER_S"])
    counts: dict[str, int] = {}
    stuck = stuck_railcars(now=now, after=after).values_list("pk", "status", "nudged_at")
    for railcar_id, status, nudged_at in stuck[:BATCH]:
        with transaction.atomic():
            # Compare-and-set on the last nudge (None matches IS NULL): of two reconcilers, or
            # a delayed run, that read the same row, one sends.
            claimed = Railcar.objects.filter(pk=railcar_id, status=status, nudged_at=nudged_at)
            if claimed.update(nudged_at=now):
                signal = OWED[status]
                transaction.on_commit(
                    lambda s=signal, pk=railcar_id: s.send(sender=Railcar, railcar_id=pk)
                )
                counts[status] = counts.get(status, 0) + 1
    if counts:
        logger.warning("reconciler re-enqueued stuck railcars: %s", counts)
    return counts


def close_idle_unloadings(*, now: datetime | None = None, after: timedelta | None = None) -> int:
    """Close every open (live) unloading that has received no frames for `after`
    (SCRAPANNOT["LIVE_IDLE_CLOSE_S"]): a plant system that crashed before its close would
    otherwise leave the railcar outside the checks and the pool for good. Its frames are kept
    and it continues as a closed unloading would; the audit event says the reconciler closed
    it. An open unloading that never received a frame is left as it is (nothing to label).
    Returns how many were closed."""
    now = now or timezone.now()
    if after is None:
        after = timedelta(seconds=settings.SCRAPANNOT["LIVE_IDLE_CLOSE_S"])
    idle = (
        Railcar.objects.filter(status=Status.RECEIVING)
        .filter(
            Q(received_at__lt=now - after) | Q(received_at__isnull=True, created_at__lt=now - after)
        )
        .order_by("pk")
    )
    closed = 0
    for railcar in idle[:BATCH]:
        last = railcar.received_at or railcar.created_at
        try:
            closed += (
                close_unloading(
                    railcar=railcar, actor=None, idle_s=(now - last).total_seconds()
                ).status
                != Status.RECEIVING
            )
        except BadAppend:
            continue  # no frames: nothing to check or label
    if closed:
        logger.warning("reconciler closed %s idle open unloadings", closed)
    return closed
