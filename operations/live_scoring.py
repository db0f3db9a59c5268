"""Score a railcar's checked layers with the production model, for its live estimate.

Runs on the `live` worker queue (operations.tasks.record_live_estimate). The model is read once
per process and model version (mlloop.registry.load keeps it), the backbone once per feature key
(mlloop.features.extractor), and each keyframe's features once ever (the FrameFeature cache the
learning loop shares), so a new layer costs one keyframe through the backbone and the heads over
the bag.

The bag is the railcar's eligible layers: those whose keyframe passed the quality checks, in
layer order. `layers_scored` counts them, and with the model version it names the estimate: a
second delivery of the task, or a second layer signal for the same state, finds it written.
"""

import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from labeling.models import Frame, FrameCheck, Layer
from mlloop import registry
from mlloop.artifacts import ArtifactError, TrainedModel
from mlloop.config import feature_key
from mlloop.feature_maps import frame_vectors
from mlloop.models import ModelVersion
from mlloop.scoring import Prediction, predict_many
from operations.live import LiveScore, record_estimate
from operations.models import LiveEstimate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one run did: the estimate (None when there is nothing to score), whether this run
    wrote it, and why not when it did not."""

    estimate: LiveEstimate | None
    written: bool
    note: str = ""


def eligible_layers(railcar_id: int) -> list[Layer]:
    return list(
        Layer.objects.filter(
            railcar_id=railcar_id,
            keyframe__isnull=False,
            keyframe__quality=Frame.Quality.ELIGIBLE,
        )
        .select_related("keyframe")
        .order_by("index")
    )


def usable_model(model_version: ModelVersion) -> TrainedModel:
    trained = registry.load(model_version)
    if feature_key(trained.config) != trained.feature_key:
        # Same backbone name, different weights file: its features would mean something else.
        raise ArtifactError(
            f"model v{model_version.number} was trained on features {trained.feature_key}; "
            f"the configured weights now give {feature_key(trained.config)}"
        )
    return trained


def layer_flags(layers: list[Layer]) -> tuple[dict[int, list[str]], dict[str, int]]:
    """The failed checks of the scored layers' frames: per layer (names) and counted."""
    failed = FrameCheck.objects.filter(
        frame__layer__in=[layer.pk for layer in layers], passed=False
    ).values_list("frame__layer_id", "name")
    per_layer: dict[int, set[str]] = {}
    counts: Counter[str] = Counter()
    for layer_id, name in failed:
        per_layer.setdefault(layer_id, set()).add(name)
        counts[name] += 1
    return {k: sorted(v) for k, v in per_layer.items()}, dict(sorted(counts.items()))


def live_score(trained: TrainedModel, layers: list[Layer]) -> LiveScore | None:
    """The model's view of the railcar from `layers`; None when no keyframe could be read."""
    vectors = frame_vectors(
        [layer.keyframe for layer in layers], trained.config, inclusion=trained.inclusion
    )
    usable = [layer for layer in layers if layer.keyframe_id in vectors]
    if not usable:
        return None
    bag = np.stack([vectors[layer.keyframe_id] for layer in usable])
    # The bag, then each layer alone: the heads are cheap, the backbone ran once per keyframe.
    whole, *alone = predict_many(trained, [bag, *[bag[i : i + 1] for i in range(len(bag))]])
    flags, counts = layer_flags(usable)
    attention = whole.attention if whole.attention is not None else np.ones(len(usable))
    return LiveScore(
        layers_scored=len(usable),
        contamination_pct=whole.contamination_pct,
        grade_probs=whole.grade_probs,
        expected_error_pct=whole.expected_error_pct,
        per_layer=[
            _layer_entry(layer, float(weight), single, flags.get(layer.pk, []))
            for layer, weight, single in zip(usable, attention, alone, strict=True)
        ],
        quality_flags=counts,
    )


def _layer_entry(layer: Layer, weight: float, alone: Prediction, flags: list[str]) -> dict:
    return {
        "layer": layer.index,
        "attention": round(weight, 6),
        "contamination_pct": round(alone.contamination_pct, 4),
        "grade": max(alone.grade_probs.items(), key=lambda item: item[1])[0],
        "keyframe": str(layer.keyframe.uid),
        "flags": flags,
    }


def estimate_railcar(*, railcar_id: int) -> Outcome:
    """Record the production model's estimate of the railcar's eligible layers, once."""
    model_version = registry.production()
    if model_version is None:
        return Outcome(None, False, "no production model")
    layers = eligible_layers(railcar_id)
    if not layers:
        return Outcome(None, False, "no layer with an eligible keyframe")
    done = LiveEstimate.objects.filter(
        railcar_id=railcar_id, model_version=model_version, layers_scored=len(layers)
    ).first()
    if done is not None:
        return Outcome(done, False, "estimated before")  # a redelivery: nothing to do
    score = live_score(usable_model(model_version), layers)
    if score is None:
        logger.warning("railcar %s: no keyframe could be read, no estimate", railcar_id)
        return Outcome(None, False, "no keyframe could be read")
    estimate, written = record_estimate(
        railcar_id=railcar_id, model_version=model_version, score=score
    )
    return Outcome(estimate, written, "" if written else "estimated before")
