"""Background work of labeling. Thin: take ids, call one domain function.

Quality checks and SAM embeddings run on separate queues ("quality", "embeddings") so that a slow
model never holds up the checks. Every task is acks_late and idempotent: a worker killed mid-task
gets the message redelivered, and the re-run skips what is done.
"""

from typing import Any

from celery import shared_task

from labeling import camera_baselines, pipeline, pool, reconcile
from labeling.sam_settings import sam_enabled
from scrapannot.celery import DATABASE_TRANSIENT
from scrapannot.enqueue import enqueue

# Storage hiccups (a network filesystem, S3) may pass; a missing file does not (handled inside).
# Database restarts too; the backoff and the number of tries are scrapannot.celery.Task's.
TRANSIENT = (ConnectionError, TimeoutError, *DATABASE_TRANSIENT)


@shared_task(
    name="labeling.check_railcar_quality",
    acks_late=True,
    autoretry_for=TRANSIENT,
    soft_time_limit=540,
    time_limit=600,
)
def check_railcar_quality(railcar_id: int) -> str:
    railcar = pipeline.check_railcar(railcar_id=railcar_id)
    return railcar.status if railcar is not None else "gone"


@shared_task(
    name="labeling.embed_keyframes",
    acks_late=True,
    autoretry_for=TRANSIENT,
    soft_time_limit=1740,
    time_limit=1800,
)
def embed_keyframes(railcar_id: int) -> int:
    from labeling.embedding_jobs import embed_railcar_keyframes

    return embed_railcar_keyframes(railcar_id=railcar_id)


@shared_task(name="labeling.rejudge_quality", acks_late=True, soft_time_limit=3540, time_limit=3600)
def rejudge_quality() -> int:
    return pipeline.rejudge_all()


@shared_task(name="labeling.refresh_camera_baselines", acks_late=True, soft_time_limit=540,
             time_limit=600)  # fmt: skip
def refresh_camera_baselines() -> int:
    return camera_baselines.refresh_camera_baselines()


@shared_task(name="labeling.expire_leases", acks_late=True, soft_time_limit=50, time_limit=60)
def expire_leases() -> int:
    return pool.expire_leases()


@shared_task(name="labeling.reconcile_railcars", acks_late=True, soft_time_limit=50,
             time_limit=60)  # fmt: skip
def reconcile_railcars() -> dict[str, int]:
    counts = reconcile.reconcile_railcars()
    closed = reconcile.close_idle_unloadings()
    return counts | ({"receiving closed": closed} if closed else {})


def enqueue_quality_checks(sender: Any = None, *, railcar_id: int, **kwargs: Any) -> None:
    enqueue(check_railcar_quality, railcar_id)


def enqueue_embeddings(sender: Any = None, *, railcar_id: int, **kwargs: Any) -> None:
    if sam_enabled():
        enqueue(embed_keyframes, railcar_id)
