"""The learning loop's Celery tasks. Thin: they take ids and call one domain function.

`train_model` and `score_railcars` run on the "training" queue (settings.CELERY_TASK_ROUTES):
they hold a backbone and the CPU for minutes. Time limits: a run computes features for every
frame the cache lacks (resnet18 at 224 px does some 40 frames/s on a few CPU cores, so a first
run over 2,000 railcars of 20 layers takes about 20 minutes) and then trains the heads (seconds
to minutes). 3 hours is generous. A run beats its heart every 30 s while it trains; one silent
for SCRAPANNOT["TRAINING_STALE_S"] (its worker died) may be taken over by a redelivered message
(mlloop.reconcile), and the old worker, should it wake, stores nothing. The broker's visibility
timeout (CELERY_VISIBILITY_TIMEOUT) must exceed the longest run, or Redis hands the message to a
second worker meanwhile; that second delivery finds the run claimed and returns (runs._claim).
"""

from typing import Any

from celery import shared_task

from mlloop import reconcile, registry
from mlloop.models import DatasetVersion, ModelVersion
from scrapannot.enqueue import enqueue, send

# runs and scoring are imported inside the tasks: they load torch, and this module is imported by
# every process at start (MlloopConfig.ready connects the handlers below), where a web worker
# must not pay a second of torch import.

TRAIN_SOFT_LIMIT_S = 3 * 3600
TRAIN_HARD_LIMIT_S = 3 * 3600 + 600


@shared_task(
    name="mlloop.train_model",
    acks_late=True,
    soft_time_limit=TRAIN_SOFT_LIMIT_S,
    time_limit=TRAIN_HARD_LIMIT_S,
)
def train_model(model_version_id: int) -> dict[str, Any]:
    from mlloop import runs

    run = runs.train_model_version(model_version_id)
    return {"number": run.number, "status": run.status, "production": run.is_production}


@shared_task(name="mlloop.score_railcars", acks_late=True, soft_time_limit=3000, time_limit=3300)
def score_railcars(
    model_version_id: int | None = None, railcar_ids: list[int] | None = None
) -> dict[str, Any]:
    from mlloop import scoring

    model_version = ModelVersion.objects.get(pk=model_version_id) if model_version_id else None
    report = scoring.score_railcars(model_version=model_version, railcar_ids=railcar_ids)
    return {"model": report.model_number, "scored": report.scored, "note": report.note}


@shared_task(name="mlloop.retrain", acks_late=True, soft_time_limit=280, time_limit=300)
def retrain() -> dict[str, Any]:
    """The scheduled retraining: queue a run on the newest frozen dataset version, with the
    configured settings, unless a run on that version is already queued, running or done.
    It does not freeze a version itself: freezing is an admin's decision (what goes into a
    dataset is reviewed); the schedule only makes sure each new version gets trained."""
    latest = DatasetVersion.objects.order_by("-number").first()
    if latest is None:
        return {"queued": None, "note": "no dataset version"}
    if (
        ModelVersion.objects.filter(dataset_version=latest)
        .exclude(status=ModelVersion.Status.FAILED)
        .exists()
    ):
        return {"queued": None, "note": f"dataset v{latest.number} already has a model"}
    run = registry.create_run(dataset_version=latest, actor=None)
    return {"queued": run.number}


@shared_task(name="mlloop.requeue_lost_runs", acks_late=True, soft_time_limit=50, time_limit=60)
def requeue_lost_runs() -> int:
    return reconcile.requeue_lost_runs()


def enqueue_training(sender: Any = None, *, model_version_id: int, **kwargs: Any) -> None:
    """Send a queued run to a worker and remember its task id. A broker that refuses leaves the
    run queued for the reconciler (mlloop.reconcile), not an error for the committed run."""
    task_id = send(train_model, model_version_id)
    if task_id is not None:
        ModelVersion.objects.filter(pk=model_version_id, task_id="").update(task_id=task_id)


def enqueue_scoring(sender: Any = None, *, railcar_id: int, **kwargs: Any) -> None:
    """Score a railcar that just entered the pool, if there is a model to score it with."""
    if ModelVersion.objects.filter(is_production=True).exists():
        enqueue(score_railcars, railcar_ids=[railcar_id])
