"""Background work of adjudication. Thin: take ids, call one domain function."""

from typing import Any

from celery import shared_task

from adjudication import aggregation
from scrapannot.enqueue import enqueue


@shared_task(name="adjudication.aggregate_railcar", acks_late=True, soft_time_limit=50,
             time_limit=60)  # fmt: skip
def aggregate_railcar(railcar_id: int) -> str:
    result = aggregation.aggregate_railcar(railcar_id=railcar_id)
    return result.outcome if result is not None else "skipped"


@shared_task(name="adjudication.estimate_calibrations", acks_late=True, soft_time_limit=540,
             time_limit=600)  # fmt: skip
def estimate_calibrations() -> int:
    from adjudication import calibration

    return len(calibration.estimate_and_store())


def enqueue_aggregation(sender: Any = None, *, railcar_id: int, **kwargs: Any) -> None:
    enqueue(aggregate_railcar, railcar_id)
