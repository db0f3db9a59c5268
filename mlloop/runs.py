"""One training run of a registered model version, from its frozen dataset version to a stored
artifact, its metrics, and the promotion rule.

The run writes its stage, progress and log lines to the ModelVersion row as it goes (each an
autocommitted update), so the model page can poll them while the worker trains, and a heartbeat
thread stamps `heartbeat_at` every HEARTBEAT_S, so that a run whose worker died is taken over
within SCRAPANNOT["TRAINING_STALE_S"] (mlloop.reconcile) rather than after the task's time limit.
A claim is identified by its `started_at`: a worker whose run was taken over (it stalled past the
stale bound and woke up) no longer matches it, so its log lines, its result and its audit event
are dropped instead of overwriting the live worker's.
"""

import hashlib
import logging
import threading
from datetime import datetime

import numpy as np
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from labeling.models import Frame
from mlloop import registry
from mlloop.artifacts import ArtifactError, TrainedModel, artifact_bytes
from mlloop.config import ModelConfig, config_from_dict, feature_key
from mlloop.feature_maps import head_training_data, keyframe_rows, model_bags
from mlloop.features import FeatureExtractor, extractor, load_image
from mlloop.finetune import ImageBag, finetune
from mlloop.inclusion import InclusionHead, fit_inclusion_head
from mlloop.model import BackboneError
from mlloop.models import DatasetItem, ModelVersion, Split
from mlloop.reconcile import stale_running
from mlloop.training import Bag, TrainingError, evaluate, fit
from scrapannot import audit

logger = logging.getLogger(__name__)
# Fewer keyframes with masks than this in the train split: the masks are too few to teach the
# inclusion head, and the run trains on pooled features only (said in its log).
MIN_MASKED_KEYFRAMES = 20
HEARTBEAT_S = 30.0
Status = ModelVersion.Status


class _Run:
    """Stage, progress and log of one claim of a run, written through to its row while the claim
    (`claimed_at`, the row's `started_at`) is still the row's."""

    def __init__(self, model_version: ModelVersion, claimed_at: datetime) -> None:
        self.pk = model_version.pk
        self.claimed_at = claimed_at
        self.lines: list[str] = []

    def mine(self) -> QuerySet[ModelVersion]:
        return ModelVersion.objects.filter(pk=self.pk, started_at=self.claimed_at)

    def say(self, line: str, *, progress: float | None = None, stage: str | None = None) -> None:
        logger.info("model version %s: %s", self.pk, line)
        now = timezone.now()
        self.lines.append(f"{now:%Y-%m-%d %H:%M:%S} {line}")
        fields: dict[str, object] = {"log": "\n".join(self.lines), "heartbeat_at": now}
        if progress is not None:
            fields["progress"] = round(min(max(progress, 0.0), 1.0), 4)
        if stage is not None:
            fields["stage"] = stage[:120]
        self.mine().update(**fields)


class _Heartbeat(threading.Thread):
    """Stamps the run's `heartbeat_at` every HEARTBEAT_S until stopped, on its own connection;
    a long epoch (fine-tuning on a CPU) says nothing for minutes, the heartbeat still beats."""

    def __init__(self, run: _Run) -> None:
        super().__init__(name=f"model-v{run.pk}-heartbeat", daemon=True)
        self.run_ = run
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.wait(HEARTBEAT_S):
                try:
                    self.run_.mine().filter(status=Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError as exc:  # the database restarting: beat again next time
                    logger.warning("model version %s: heartbeat failed: %s", self.run_.pk, exc)
        finally:
            connection.close()

    def stop(self) -> None:
        self.done.set()
        self.join()


def _claim(model_version_id: int) -> datetime | None:
    """Queued (or running with a dead worker) -> running, atomically: the claim's time, or None
    if another delivery of the task has it (or had it: a finished run is never trained again)."""
    now = timezone.now()
    claimed = (
        ModelVersion.objects.filter(pk=model_version_id)
        .filter(Q(status=Status.QUEUED) | stale_running(now))
        .update(
            status=Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            progress=0.0,
            stage="starting",
            log="",
        )
    )
    return now if claimed else None


def train_model_version(model_version_id: int) -> ModelVersion:
    """Train, evaluate, store and register one queued model version; a re-delivery of a run
    that is running or done changes nothing. Problems the user can fix (an empty split, an
    unknown backbone, unusable weights) end the run as failed with the reason in its log."""
    claimed_at = _claim(model_version_id)
    if claimed_at is None:
        return ModelVersion.objects.get(pk=model_version_id)
    model_version = ModelVersion.objects.select_related("dataset_version").get(pk=model_version_id)
    run = _Run(model_version, claimed_at)
    heartbeat = _Heartbeat(run)
    heartbeat.start()
    try:
        trained, metrics = _train(model_version, run)
        stored = _succeed(model_version, run, trained, metrics)
    except (TrainingError, BackboneError, ValidationError, ArtifactError) as exc:
        _fail(model_version, run, str(exc))
        return ModelVersion.objects.get(pk=model_version_id)
    except Exception as exc:
        _fail(model_version, run, f"unexpected error: {exc!r}")
        raise
    finally:
        heartbeat.stop()
    if not stored:
        return ModelVersion.objects.get(pk=model_version_id)
    promoted = registry.auto_promote(ModelVersion.objects.get(pk=model_version_id))
    done = ModelVersion.objects.get(pk=model_version_id)
    run.lines = done.log.splitlines()
    run.say(
        f"promotion rule: {'promoted' if promoted else 'not promoted'}; "
        f"{done.metrics.get('promotion', {}).get('reason', '')}"
    )
    return ModelVersion.objects.get(pk=model_version_id)


def _inclusion_head(train_ids: list[int], config: ModelConfig, run: _Run) -> InclusionHead | None:
    if not config.mask_supervision:
        return None
    maps, targets = head_training_data(train_ids, config, log=run.say)
    if len(maps) < MIN_MASKED_KEYFRAMES:
        run.say(
            f"{len(maps)} train keyframes carry masks (fewer than {MIN_MASKED_KEYFRAMES}): "
            "training on pooled features only"
        )
        return None
    run.say(f"fitting the inclusion head on the masks of {len(maps)} train keyframes")
    return fit_inclusion_head(maps, targets, seed=config.seed)


def _bags(
    model_version: ModelVersion, config: ModelConfig, run: _Run
) -> tuple[dict[str, list[Bag]], InclusionHead | None]:
    items = list(
        DatasetItem.objects.filter(version=model_version.dataset_version).values_list(
            "railcar_id", "split", "contamination_pct", "grade"
        )
    )
    run.say(
        f"{len(items)} railcars in dataset v{model_version.dataset_version.number}; "
        "computing features (cached ones are reused)",
        progress=0.02,
        stage="features",
    )
    inclusion = _inclusion_head([i[0] for i in items if i[1] == Split.TRAIN], config, run)
    features = model_bags([i[0] for i in items], config, inclusion=inclusion, log=run.say)
    grade_index = {grade: i for i, grade in enumerate(config.grades)}
    bags: dict[str, list[Bag]] = {split: [] for split in Split.values}
    for railcar_id, split, contamination, grade in items:
        if railcar_id not in features:
            run.say(f"railcar {railcar_id} skipped: no readable keyframe")
            continue
        if grade not in grade_index:
            run.say(f"railcar {railcar_id} skipped: grade {grade!r} not among {config.grades}")
            continue
        bags[split].append(
            Bag(features[railcar_id], float(contamination), grade_index[grade], railcar_id)
        )
    run.say(", ".join(f"{split}: {len(b)} railcars" for split, b in bags.items()), progress=0.3)
    return bags, inclusion


def _train(model_version: ModelVersion, run: _Run) -> tuple[TrainedModel, dict[str, object]]:
    config = config_from_dict(model_version.settings)
    key = feature_key(config)
    bags, inclusion = _bags(model_version, config, run)
    for split in (Split.TRAIN, Split.VAL):
        if not bags[split]:
            raise TrainingError(
                f"dataset v{model_version.dataset_version.number} has no usable railcars in its "
                f"{split} split; freeze a version with more labeled railcars"
            )
    run.say(f"training {config.backbone} heads for {config.epochs} epochs", stage="training")
    trained = fit(
        bags[Split.TRAIN],
        bags[Split.VAL],
        config,
        feature_key=key,
        progress=lambda fraction, line: run.say(line, progress=0.3 + 0.6 * fraction),
        inclusion=inclusion,
    )
    if config.finetune_stages:
        trained, bags = _finetuned(trained, bags, run)
        key = trained.feature_key
    run.say(f"best epoch {trained.best_epoch}; evaluating", progress=0.92, stage="evaluating")
    metrics: dict[str, object] = {
        split: evaluate(trained, bags[split]) for split in (Split.TRAIN, Split.VAL, Split.TEST)
    }
    metrics["best_epoch"] = trained.best_epoch
    metrics["history"] = trained.history
    metrics["feature_key"] = key
    champion = registry.production()
    if champion is not None and champion.metrics.get("feature_key") == key:
        try:
            champion_model = registry.load(champion)
            measured = evaluate(champion_model, _rebuilt(champion_model, bags))
            metrics["champion_val"] = {"model": champion.number, "mae": measured["mae"]}
        except ArtifactError as exc:
            run.say(f"production model not measured on this validation split: {exc}")
    return trained, metrics


def _image_bags(base: FeatureExtractor, bags: list[Bag]) -> list[ImageBag]:
    """Each railcar's keyframes in layer order, preprocessed for fine-tuning one at a time (a
    decoded camera frame is megabytes; its preprocessed crop a fraction of that)."""
    rows = keyframe_rows([b.railcar_id for b in bags])
    frames = {f.pk: f for f in Frame.objects.filter(pk__in=[f for _, f in rows])}
    layers: dict[int, list[np.ndarray]] = {}
    for railcar_id, frame_id in rows:
        try:
            image = load_image(frames[frame_id])
        except (OSError, ValueError):
            continue  # left out of the bag, as feature extraction leaves it out
        crop = base.preprocess(image, frames[frame_id].railcar_box).astype(np.float16)
        layers.setdefault(railcar_id, []).append(crop)
    return [
        ImageBag(layers[b.railcar_id], b.contamination, b.grade)
        for b in bags
        if b.railcar_id in layers
    ]


def _finetuned(
    trained: TrainedModel, bags: dict[str, list[Bag]], run: _Run
) -> tuple[TrainedModel, dict[str, list[Bag]]]:
    """Fine-tune the backbone with the heads (mlloop.finetune); the splits' bags as the result
    reads them (the fine-tuned backbone's features, cached under its own key)."""
    config = trained.config
    run.say(
        f"fine-tuning the last {config.finetune_stages} of stages {list(config.stages)} with the "
        f"heads for {config.finetune_epochs} epochs",
        progress=0.6,
        stage="fine-tuning",
    )
    base = extractor(config)
    tuned, _ = finetune(
        trained,
        base,
        _image_bags(base, bags[Split.TRAIN]),
        _image_bags(base, bags[Split.VAL]),
        progress=lambda fraction, line: run.say(line, progress=0.6 + 0.3 * fraction),
    )
    if tuned is trained:
        run.say("fine-tuning did not beat the heads alone on validation: the heads are kept")
        return trained, bags
    tuned.feature_key = feature_key(tuned.config)
    run.say("computing the fine-tuned backbone's features", stage="features")
    ids = [b.railcar_id for split in bags.values() for b in split]
    found = model_bags(ids, tuned.config, inclusion=tuned.inclusion, log=run.say)
    return tuned, {
        split: [
            Bag(found[b.railcar_id], b.contamination, b.grade, b.railcar_id)
            for b in split_bags
            if b.railcar_id in found
        ]
        for split, split_bags in bags.items()
    }


def _rebuilt(trained: TrainedModel, bags: dict[str, list[Bag]]) -> list[Bag]:
    """The validation bags as `trained` reads them (its own inclusion head, if any)."""
    val = bags[Split.VAL]
    features = model_bags([b.railcar_id for b in val], trained.config, inclusion=trained.inclusion)
    return [
        Bag(features[b.railcar_id], b.contamination, b.grade, b.railcar_id)
        for b in val
        if b.railcar_id in features
    ]


def _still_mine(run: _Run) -> bool:
    """Under the row's lock: is this claim still the running one? If not, another worker took
    the run over while this one was silent past the stale bound."""
    row = ModelVersion.objects.select_for_update().get(pk=run.pk)
    if row.status == Status.RUNNING and row.started_at == run.claimed_at:
        return True
    logger.warning(
        "model version %s: taken over by another worker (or finished) while this one was "
        "silent; its result is dropped",
        run.pk,
    )
    return False


def _succeed(
    model_version: ModelVersion, run: _Run, trained: TrainedModel, metrics: dict[str, object]
) -> bool:
    """Store the artifact and the metrics, audited; False (nothing stored) if the run is no
    longer this claim's."""
    data = artifact_bytes(trained)
    digest = hashlib.sha256(data).hexdigest()
    name = default_storage.save(
        f"models/model-v{model_version.number}-{digest[:16]}.pt", ContentFile(data)
    )
    test = metrics[Split.TEST]
    run.say(
        f"artifact {name} ({len(data)} bytes); test: {_summary(test)}", progress=1.0, stage="done"
    )
    with transaction.atomic():
        if not _still_mine(run):
            transaction.on_commit(lambda: default_storage.delete(name))
            return False
        ModelVersion.objects.filter(pk=model_version.pk).update(
            status=Status.SUCCEEDED,
            metrics=metrics,
            artifact=name,
            artifact_sha256=digest,
            finished_at=timezone.now(),
        )
        audit.record(
            action="model.trained",
            obj=model_version,
            payload={
                "number": model_version.number,
                "dataset_version": model_version.dataset_version.number,
                "artifact_sha256": digest,
                "val": _headline(metrics[Split.VAL]),
                "test": _headline(test),
            },
        )
    return True


def _fail(model_version: ModelVersion, run: _Run, reason: str) -> None:
    run.say(f"failed: {reason}", stage="failed")
    with transaction.atomic():
        if not _still_mine(run):
            return
        ModelVersion.objects.filter(pk=model_version.pk).update(
            status=Status.FAILED, finished_at=timezone.now()
        )
        audit.record(
            action="model.failed",
            obj=model_version,
            payload={"number": model_version.number, "reason": reason},
        )


_HEADLINE = ("n", "mae", "r2", "accuracy", "precision_macro", "recall_macro", "f1_macro")


def _headline(split_metrics: dict[str, object]) -> dict[str, object]:
    return {k: split_metrics[k] for k in _HEADLINE if k in split_metrics}


def _summary(split_metrics: dict[str, object]) -> str:
    return ", ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in _headline(split_metrics).items()
    )
