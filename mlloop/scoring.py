"""Scoring unlabeled railcars with the production model, and active learning through the pool.

Each railcar gets a contamination estimate, grade probabilities and an uncertainty from MC
dropout (`mc_samples` forward passes with dropout on):

    uncertainty = 0.5 * spread / (spread + t) + 0.5 * entropy / ln(C)

where spread is the STD of the contamination over the passes, t the adjudication threshold on
the raters' STD (aggregation.std_threshold, 0.4 pp: a model as unsure as raters who must be
adjudicated scores 0.25 from this term), entropy that of the mean grade probabilities and C the
number of grades. Both terms lie in [0, 0.5), so the uncertainty lies in [0, 1) on a fixed scale,
comparable across runs. It becomes the railcar's pool priority: the most uncertain go first.

A share of railcars (policy mlloop.random_pick_share) takes a uniform draw from [0, 1) as its
priority instead: they reach annotators regardless of the model, an unbiased sample for
evaluating the next model. Priorities only order the pool; no page or API shows them.
"""

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction
from django.utils import timezone

from adjudication.estimates import Estimate
from adjudication.models import FinalLabel
from adjudication.policies import STD_THRESHOLD
from labeling.models import Railcar
from mlloop.config import RANDOM_PICK_SHARE, feature_key
from mlloop.models import ModelVersion, RailcarScore
from scrapannot import audit
from scrapannot.policy import policy_value

logger = logging.getLogger(__name__)

# Railcars without a final label that a score helps: in the pool (priority), and awaiting
# aggregation or adjudication (the senior inspector's page shows the estimate).
SCORED_STATUSES = (
    Railcar.Status.IN_POOL,
    Railcar.Status.RATED,
    Railcar.Status.IN_ADJUDICATION,
)
CHUNK = 256


@dataclass(frozen=True)
class Prediction:
    contamination_pct: float
    contamination_spread: float
    grade_probs: dict[str, float]
    grade_entropy: float


@dataclass
class ScoringReport:
    model_number: int | None = None
    scored: int = 0
    random_picks: int = 0
    skipped: list[int] = field(default_factory=list)
    note: str = ""


def predict_many(trained: object, bags: Sequence[np.ndarray], mc_samples: int) -> list[Prediction]:
    """MC dropout over a batch of bags (each [layers, dim]): every layer, dropout on,
    `mc_samples` passes done as one batch per bag."""
    import torch

    from mlloop.training import collate

    model = trained.model
    model.train()  # dropout on; the heads have no batch norm, so nothing else changes
    grades = trained.config.grades
    out = []
    try:
        with torch.inference_mode():
            for bag in bags:
                features, mask = collate([bag] * mc_samples, None, None)
                output = model(features.to(trained.config.device), mask.to(trained.config.device))
                contamination = model.to_percent(output.contamination).cpu().numpy()
                probs = torch.softmax(output.grade_logits, dim=1).mean(dim=0).cpu().numpy()
                out.append(_prediction(contamination, probs, grades))
    finally:
        model.eval()
    return out


def predict(trained: object, bag: np.ndarray, mc_samples: int) -> Prediction:
    return predict_many(trained, [bag], mc_samples)[0]


def _prediction(contamination: np.ndarray, probs: np.ndarray, grades: Sequence[str]) -> Prediction:
    p = np.clip(probs.astype(float), 1e-12, 1.0)
    return Prediction(
        contamination_pct=float(contamination.mean()),
        contamination_spread=float(contamination.std()),
        grade_probs={g: float(v) for g, v in zip(grades, probs, strict=True)},
        grade_entropy=float(-(p * np.log(p)).sum()),
    )


def uncertainty(prediction: Prediction, *, std_threshold: float, n_grades: int) -> float:
    spread = prediction.contamination_spread
    spread_term = spread / (spread + std_threshold) if spread > 0 else 0.0
    entropy_term = min(prediction.grade_entropy / math.log(n_grades), 1.0)
    return 0.5 * spread_term + 0.5 * entropy_term


def _candidates(railcar_ids: Iterable[int] | None, model_version: ModelVersion) -> list[int]:
    railcars = Railcar.objects.filter(status__in=SCORED_STATUSES).exclude(
        pk__in=FinalLabel.objects.current().values("railcar_id")
    )
    if railcar_ids is not None:
        railcars = railcars.filter(pk__in=list(railcar_ids))
    # Scored by this model already: a re-run changes nothing (and redraws no random picks).
    railcars = railcars.exclude(
        pk__in=RailcarScore.objects.filter(model_version=model_version).values("railcar_id")
    )
    return list(railcars.order_by("pk").values_list("pk", flat=True))


def score_railcars(
    *, model_version: ModelVersion | None = None, railcar_ids: Iterable[int] | None = None
) -> ScoringReport:
    """Score the railcars that have no final label (all of them, or those of `railcar_ids`)
    with `model_version`, by default the production model; write their scores and set their
    pool priority. Nothing to do without a production model."""
    from mlloop import registry
    from mlloop.features import railcar_features

    model_version = model_version or registry.production()
    if model_version is None:
        return ScoringReport(note="no production model")
    trained = registry.load(model_version)
    if feature_key(trained.config) != trained.feature_key:
        # Same backbone name, different weights file: its features would mean something else.
        raise registry.ArtifactError(
            f"model v{model_version.number} was trained on features {trained.feature_key}; "
            f"the configured weights now give {feature_key(trained.config)}"
        )
    report = ScoringReport(model_number=model_version.number)
    threshold = float(policy_value(STD_THRESHOLD))
    share = float(policy_value(RANDOM_PICK_SHARE))
    rng = np.random.default_rng()
    ids = _candidates(railcar_ids, model_version)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        bags = railcar_features(chunk, trained.config, log=logger.warning)
        report.skipped += [pk for pk in chunk if pk not in bags]
        scored = [pk for pk in chunk if pk in bags]
        predictions = predict_many(trained, [bags[pk] for pk in scored], trained.config.mc_samples)
        now = timezone.now()
        rows, priorities = [], {}
        for pk, prediction in zip(scored, predictions, strict=True):
            u = uncertainty(prediction, std_threshold=threshold, n_grades=len(trained.grades))
            random_pick = bool(rng.random() < share)
            priorities[pk] = float(rng.random()) if random_pick else u
            report.random_picks += random_pick
            rows.append(
                RailcarScore(
                    railcar_id=pk,
                    model_version=model_version,
                    contamination_pct=prediction.contamination_pct,
                    grade_probs=prediction.grade_probs,
                    contamination_spread=prediction.contamination_spread,
                    grade_entropy=prediction.grade_entropy,
                    uncertainty=u,
                    random_pick=random_pick,
                    scored_at=now,
                )
            )
        with transaction.atomic():
            created = RailcarScore.objects.bulk_create(rows, ignore_conflicts=True)
            # One UPDATE per chunk, not one per railcar.
            Railcar.objects.bulk_update(
                [Railcar(pk=pk, priority=priorities[pk]) for pk in sorted(priorities)],
                ["priority"],
            )
        report.scored += len(created)
    with transaction.atomic():
        audit.record(
            action="model.scored",
            obj=model_version,
            payload={
                "number": model_version.number,
                "scored": report.scored,
                "random_picks": report.random_picks,
                "random_pick_share": share,
                "skipped_no_frames": report.skipped,
            },
        )
    return report


def production_estimate(railcar_id: int) -> Estimate | None:
    """The production model's latest score of a railcar, for the adjudication page (seniors
    only; registered with adjudication.estimates)."""
    score = (
        RailcarScore.objects.filter(railcar_id=railcar_id, model_version__is_production=True)
        .select_related("model_version")
        .order_by("-scored_at")
        .first()
    )
    if score is None or not score.grade_probs:
        return None
    grade, probability = max(score.grade_probs.items(), key=lambda item: item[1])
    return Estimate(
        contamination_pct=score.contamination_pct,
        grade=grade,
        grade_probability=probability,
        uncertainty=score.uncertainty,
        model_label=f"model v{score.model_version.number}",
    )
