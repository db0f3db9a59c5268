"""Re-enqueue training runs whose message was lost.

A run's status, not the queue, records what is owed: a `queued` run owes a training task. A broker
restart loses queued messages, and a broker that refused the enqueue after the run committed
(`scrapannot.enqueue.send`) leaves only the row. Beat runs this every five minutes (a data
migration creates the schedule): a run queued for longer than SCRAPANNOT["RECONCILE_AFTER_S"], or
running with a worker silent for SCRAPANNOT["TRAINING_STALE_S"] (the run beats its heart every
30 s, so its worker died), gets its task sent again, at most once per period (a compare-and-set
on `nudged_at`). Re-sending is safe: `runs.train_model_version` claims a run atomically, so a
second delivery of a live run returns at once, and a worker that lost its run to a takeover
stores nothing.

A queued run may also just be waiting behind a long run on the training queue; the nudge then
adds one message per period, which finds the run claimed or done and returns.

Scoring needs no reconciler (beat rescores the pool on its schedule), nor do SAM embeddings (the
mask tool computes a missing one on first use).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from mlloop.models import ModelVersion
from scrapannot.enqueue import enqueue

logger = logging.getLogger(__name__)
Status = ModelVersion.Status

TRAIN_TASK = "mlloop.train_model"


def stale_running(now: datetime) -> Q:
    """Runs "running" whose worker has said nothing for TRAINING_STALE_S: it died, and a
    redelivered message may take the run over (runs._claim). Rows from before the heartbeat
    existed count from their start."""
    silent = now - timedelta(seconds=settings.SCRAPANNOT["TRAINING_STALE_S"])
    return Q(status=Status.RUNNING) & (
        Q(heartbeat_at__lt=silent) | Q(heartbeat_at__isnull=True, started_at__lt=silent)
    )


def lost_runs(*, now: datetime, after: timedelta) -> Q:
    waited = now - after
    return (Q(status=Status.QUEUED, created_at__lt=waited) | stale_running(now)) & (
        Q(nudged_at__isnull=True) | Q(nudged_at__lt=waited)
    )


def requeue_lost_runs(*, now: datetime | None = None, after: timedelta | None = None) -> int:
    """Send the training task again for each run that seems to have lost it; how many."""
    now = now or timezone.now()
    if after is None:
        after = timedelta(seconds=settings.SCRAPANNOT["RECONCILE_AFTER_S"])
    sent = 0
    found = ModelVersion.objects.filter(lost_runs(now=now, after=after))
    for pk, nudged_at in found.values_list("pk", "nudged_at"):
        # Of two reconcilers that read the same row, one sends.
        if ModelVersion.objects.filter(pk=pk, nudged_at=nudged_at).update(nudged_at=now):
            sent += enqueue(TRAIN_TASK, pk)
    if sent:
        logger.warning("reconciler re-enqueued %s training runs", sent)
    return sent
