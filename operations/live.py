"""Live estimates of unloadings (seed 000, section 6.2): as a layer's keyframe passes the quality
checks, the production model scores the railcar's checked layers (operations.live_scoring, on
the `live` queue) and one `LiveEstimate` is recorded here, with its audit event, exactly once.
The queries the operator pages and reports read estimates with live here too. No torch here: the
web processes import this module.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery

from labeling.models import Railcar
from mlloop.models import ModelVersion
from operations.live_policies import ERROR_TOLERANCE
from operations.models import LiveEstimate
from operations.signals import estimate_recorded
from scrapannot import audit
from scrapannot.policy import policy_value

# Newest first: the estimate over the most layers, then the latest written (a new model version
# scoring the same layers again).
NEWEST = ("-layers_scored", "-id")


def latest_estimate(railcar: Railcar | int) -> LiveEstimate | None:
    """The railcar's newest estimate, or None."""
    railcar_id = railcar.pk if isinstance(railcar, Railcar) else railcar
    return (
        LiveEstimate.objects.filter(railcar_id=railcar_id)
        .select_related("model_version")
        .order_by(*NEWEST)
        .first()
    )


def latest_estimates(railcar_ids: Iterable[int]) -> dict[int, LiveEstimate]:
    """The newest estimate of each of `railcar_ids` that has one, in one query."""
    ids = list(railcar_ids)
    if not ids:
        return {}
    # A correlated subquery rather than DISTINCT ON, so that SQLite (the first-run default)
    # answers it too.
    newest = LiveEstimate.objects.filter(railcar_id=OuterRef("railcar_id")).order_by(*NEWEST)
    rows = LiveEstimate.objects.filter(
        railcar_id__in=ids, pk=Subquery(newest.values("pk")[:1])
    ).select_related("model_version")
    return {row.railcar_id: row for row in rows}


def confidence(*, expected_error_pct: float, tolerance_pct: float) -> float:
    """1 for an estimate expected to be exact, 0 at or beyond the tolerance."""
    return max(0.0, 1.0 - expected_error_pct / tolerance_pct)


@dataclass(frozen=True)
class LiveScore:
    """What the model said about the railcar's checked layers (operations.live_scoring)."""

    layers_scored: int
    contamination_pct: float
    grade_probs: dict[str, float]
    expected_error_pct: float
    per_layer: list[dict[str, Any]]
    quality_flags: dict[str, int]


def record_estimate(
    *, railcar_id: int, model_version: ModelVersion, score: LiveScore
) -> tuple[LiveEstimate, bool]:
    """Write the estimate and its audit event once; (the estimate, whether this call wrote it).

    The unique constraint (railcar, model version, layers scored) decides between two deliveries
    of one scoring task: the second insert fails inside its savepoint, nothing of it (audit
    event included) is kept, and the first one's row is returned.
    """
    tolerance = float(policy_value(ERROR_TOLERANCE))
    grade = max(score.grade_probs.items(), key=lambda item: item[1])[0]
    try:
        with transaction.atomic():
            estimate = LiveEstimate.objects.create(
                railcar_id=railcar_id,
                model_version=model_version,
                layers_scored=score.layers_scored,
                contamination_pct=min(100.0, max(0.0, score.contamination_pct)),
                grade=grade,
                grade_probs=score.grade_probs,
                confidence=confidence(
                    expected_error_pct=score.expected_error_pct, tolerance_pct=tolerance
                ),
                expected_error_pct=score.expected_error_pct,
                per_layer=score.per_layer,
                quality_flags=score.quality_flags,
            )
            audit.record(
                action="live_estimate.recorded",
                # On the railcar, so that its timeline shows the estimate.
                obj=Railcar(pk=railcar_id),
                payload={
                    "railcar": railcar_id,
                    "estimate": estimate.pk,
                    "model_version": model_version.number,
                    "layers_scored": score.layers_scored,
                    "contamination_pct": round(estimate.contamination_pct, 3),
                    "grade": grade,
                    "confidence": round(estimate.confidence, 4),
                    "expected_error_pct": round(score.expected_error_pct, 4),
                    "tolerance_pct": tolerance,
                    "quality_flags": score.quality_flags,
                },
            )
            transaction.on_commit(
                lambda: estimate_recorded.send(
                    sender=LiveEstimate, railcar_id=railcar_id, estimate_id=estimate.pk
                )
            )
    except IntegrityError:
        existing = LiveEstimate.objects.get(
            railcar_id=railcar_id,
            model_version=model_version,
            layers_scored=score.layers_scored,
        )
        return existing, False
    return estimate, True
