"""Background work of operations. Thin: take ids, call one domain function.

`record_live_estimate` runs on its own queue, `live` (settings.CELERY_TASK_ROUTES): a layer's
estimate must not wait behind a training run or a batch of quality checks. It is acks_late and
idempotent: a redelivered message finds its estimate written (operations.live.record_estimate).
"""

from typing import Any

from celery import shared_task
from django.conf import settings

from scrapannot.celery import DATABASE_TRANSIENT
from scrapannot.enqueue import enqueue

# Storage hiccups may pass; database restarts too.
TRANSIENT = (ConnectionError, TimeoutError, *DATABASE_TRANSIENT)


@shared_task(
    name="operations.record_live_estimate",
    acks_late=True,
    autoretry_for=TRANSIENT,
    soft_time_limit=110,
    time_limit=120,
)
def record_live_estimate(railcar_id: int) -> dict[str, Any]:
    # Imported here: it loads torch, and this module is imported by every process at start.
    from operations.live_scoring import estimate_railcar

    threads = settings.MLLOOP["LIVE_TORCH_THREADS"]
    if threads and not record_live_estimate.request.is_eager:
        import torch

        # A worker process of its own: set it for the process (not in an eager caller's).
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    outcome = estimate_railcar(railcar_id=railcar_id)
    estimate = outcome.estimate
    return {
        "estimate": estimate.pk if estimate is not None else None,
        "written": outcome.written,
        "note": outcome.note,
    }


def enqueue_live_estimate(sender: Any = None, *, railcar_id: int, **kwargs: Any) -> None:
    enqueue(record_live_estimate, railcar_id)
