"""The model registry: queue a training run, promote, roll back, load a model version (its
artifact, read by mlloop.artifacts, kept once per process).

At most one model version is in production (a database constraint). Each promotion remembers the
model it replaced (`promoted_over`), so a rollback returns to it, and a second rollback to the
one before that. Every change here is an audit event.
"""

import threading
from collections import OrderedDict
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from mlloop import signals
from mlloop.artifacts import TrainedModel, read_artifact
from mlloop.config import feature_key, model_config
from mlloop.models import DatasetVersion, ModelVersion
from mlloop.policies import PROMOTION_MIN_GAIN
from scrapannot import audit
from scrapannot.policy import policy_value

Status = ModelVersion.Status


class PromotionError(Exception):
    """The promotion or rollback asked for is not possible (with the reason)."""


def create_run(
    *,
    dataset_version: DatasetVersion,
    actor: AbstractBaseUser | None,
    overrides: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> ModelVersion:
    """A queued model version with a snapshot of its settings; with `enqueue`, the training task
    is sent once the surrounding transaction commits (signals.model_run_queued, which
    MlloopConfig.ready connects to tasks.enqueue_training). Bad settings raise ValidationError."""
    import timm

    config = model_config(**(overrides or {}))
    # Fail here, at the edge, on what is cheap to check: the name and a readable weights file.
    # Whether the weights fit the backbone is found out by the worker, which builds it anyway.
    if not timm.is_model(config.backbone):
        raise ValidationError(f"backbone: {config.backbone!r} is not a timm model name")
    feature_key(config)
    for _attempt in range(5):
        try:
            with transaction.atomic():
                number = (ModelVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
                run = ModelVersion.objects.create(
                    number=number,
                    dataset_version=dataset_version,
                    settings=config.as_dict(),
                    created_at=timezone.now(),
                    created_by=actor,
                )
                audit.record(
                    action="model.queued",
                    actor=actor,
                    obj=run,
                    payload={
                        "number": number,
                        "dataset_version": dataset_version.number,
                        "settings": run.settings,
                    },
                )
            break
        except IntegrityError:
            continue  # another run took the number: draw the next one
    else:
        raise IntegrityError("could not allocate a model version number")
    if enqueue:
        transaction.on_commit(
            lambda: signals.model_run_queued.send(sender=ModelVersion, model_version_id=run.pk)
        )
    return run


def production() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_production=True).first()


def _lock(model_version: ModelVersion) -> tuple[ModelVersion, ModelVersion | None]:
    """Lock the candidate and the current production row (in id order, so that two promotions
    cannot deadlock); return fresh copies."""
    rows = list(
        ModelVersion.objects.select_for_update()
        .filter(Q(pk=model_version.pk) | Q(is_production=True))
        .order_by("pk")
    )
    candidate = next(r for r in rows if r.pk == model_version.pk)
    current = next((r for r in rows if r.is_production), None)
    return candidate, current


def _switch(*, old: ModelVersion | None, new: ModelVersion, remember_old: bool) -> None:
    now = timezone.now()
    if old is not None:
        ModelVersion.objects.filter(pk=old.pk).update(is_production=False)
    fields = {"is_production": True, "promoted_at": now}
    if remember_old:
        fields["promoted_over"] = old
    try:
        with transaction.atomic():
            ModelVersion.objects.filter(pk=new.pk).update(**fields)
    except IntegrityError as exc:
        raise PromotionError("another promotion happened at the same moment; try again") from exc
    new.refresh_from_db()


def promote(
    *, model_version: ModelVersion, actor: AbstractBaseUser | None, reason: str
) -> ModelVersion:
    """Make `model_version` the production model (admins, or the promotion rule)."""
    with transaction.atomic():
        candidate, current = _lock(model_version)
        if candidate.status != Status.SUCCEEDED or not candidate.artifact:
            raise PromotionError(f"model v{candidate.number} has not trained successfully")
        if current is not None and current.pk == candidate.pk:
            raise PromotionError(f"model v{candidate.number} is already in production")
        _switch(old=current, new=candidate, remember_old=True)
        audit.record(
            action="model.promoted",
            actor=actor,
            obj=candidate,
            payload={
                "number": candidate.number,
                "replaced": current.number if current else None,
                "reason": reason,
            },
        )
    return candidate


def rollback(*, actor: AbstractBaseUser | None, reason: str = "") -> ModelVersion:
    """Put back the model the current production model replaced."""
    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(is_production=True).first()
        if current is None:
            raise PromotionError("there is no production model to roll back")
        if current.promoted_over_id is None:
            raise PromotionError(f"model v{current.number} replaced no earlier model")
        previous = ModelVersion.objects.select_for_update().get(pk=current.promoted_over_id)
        if previous.status != Status.SUCCEEDED or not previous.artifact:
            raise PromotionError(f"model v{previous.number} has no usable artifact")
        # The restored model keeps its own `promoted_over`: a second rollback goes further back.
        _switch(old=current, new=previous, remember_old=False)
        audit.record(
            action="model.rolled_back",
            actor=actor,
            obj=previous,
            payload={"from": current.number, "to": previous.number, "reason": reason},
        )
    return previous


def auto_promote(model_version: ModelVersion) -> bool:
    """The promotion rule, applied when a run succeeds: promote if there is no production model,
    or if the run's validation MAE beats the production model's by more than the policy's
    minimum gain. The production model is measured on the run's own validation bags when the
    run could (same features; `metrics["champion_val"]`), else its recorded validation MAE is
    used (a different, possibly smaller, validation split). The decision and its reason are kept
    in `metrics["promotion"]`."""
    min_gain = float(policy_value(PROMOTION_MIN_GAIN))
    with transaction.atomic():
        candidate, current = _lock(model_version)
        if candidate.status != Status.SUCCEEDED or candidate.is_production:
            return False
        mae = candidate.metrics.get("val", {}).get("mae")
        champion = candidate.metrics.get("champion_val") or {}
        if current is None:
            promote_it, reason = True, "first model to train successfully"
        else:
            if champion.get("model") == current.number:
                baseline, basis = champion["mae"], "on the same validation railcars"
            else:
                baseline = current.metrics.get("val", {}).get("mae")
                basis = "as recorded for it (its own validation split)"
            promote_it = mae is not None and (baseline is None or mae < baseline - min_gain)
            reason = (
                f"validation MAE {mae:.3f} vs {baseline if baseline is None else f'{baseline:.3f}'}"
                f" of model v{current.number} {basis}; minimum gain {min_gain}"
            )
        decision = {"promoted": promote_it, "reason": reason}
        ModelVersion.objects.filter(pk=candidate.pk).update(
            metrics={**candidate.metrics, "promotion": decision}
        )
        if promote_it:
            promote(model_version=candidate, actor=None, reason=f"promotion rule: {reason}")
    return promote_it


_cache: "OrderedDict[tuple[int, str], TrainedModel]" = OrderedDict()
_cache_lock = threading.Lock()


def load(model_version: ModelVersion) -> TrainedModel:
    """The trained model of a version, read from its artifact once per process;
    artifacts.ArtifactError if the file is missing, altered or unreadable."""
    key = (model_version.pk, model_version.artifact_sha256)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    trained = read_artifact(model_version)
    with _cache_lock:
        _cache[key] = trained
        while len(_cache) > 4:
            _cache.popitem(last=False)
    return trained
