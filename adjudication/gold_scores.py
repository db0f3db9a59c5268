"""Raters measured against gold truth: bias, scale, noise, grade accuracy, and their drift.

Every rating of a gold railcar (labeling.gold_models) is a reading of a known truth, so unlike the
agreement page's figures against final labels (which include the rater's own rating) these say
how the rater reads the plant's contamination itself:

- bias: mean of rating - truth, percentage points;
- scale: least-squares slope of rating on truth (1 = reads the truth's width), once there are
  MIN_SCALE_POINTS gold ratings with some spread in the truth;
- noise: SD of what the line rating = a + scale * truth leaves (SD of rating - truth without a
  scale);
- grade accuracy: share of gold grades named;
- drift: bias and MAE per period (week or month, as the agreement page chooses), one chart per
  rater, so that a rater who starts to read high shows before their labels pile up.

`score` is pure; `gold_report` reads the database.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from adjudication.agreement_statistics import (
    MIN_SCALE_POINTS,
    choose_period,
    next_period,
    period_start,
)
from labeling.models import Rating


@dataclass(frozen=True)
class GoldRating:
    rater: str
    railcar_id: int
    contamination_pct: float
    grade: str
    truth_pct: float
    truth_grade: str
    submitted_at: datetime


@dataclass(frozen=True)
class DriftPoint:
    start: date
    n: int
    bias: float | None
    mae: float | None


@dataclass(frozen=True)
class RaterGoldScore:
    rater: str
    n: int
    bias: float
    scale: float | None
    noise_sd: float | None
    mae: float
    grade_accuracy: float
    drift: list[DriftPoint]


def score(rows: Sequence[GoldRating], *, period: str | None = None) -> list[RaterGoldScore]:
    """One score per rater with gold ratings, by rater name; drift on a period shared by all."""
    if not rows:
        return []
    period = period or choose_period([r.submitted_at for r in rows])
    starts = [period_start(r.submitted_at, period) for r in rows]
    first, last = min(starts), max(starts)
    slots = [first]
    while slots[-1] < last:
        slots.append(next_period(slots[-1], period))
    by_rater: dict[str, list[tuple[GoldRating, date]]] = defaultdict(list)
    for row, start in zip(rows, starts, strict=True):
        by_rater[row.rater].append((row, start))
    return [_one(rater, by_rater[rater], slots) for rater in sorted(by_rater)]


def _one(rater: str, rows: list[tuple[GoldRating, date]], slots: list[date]) -> RaterGoldScore:
    v = np.array([r.contamination_pct for r, _ in rows])
    t = np.array([r.truth_pct for r, _ in rows])
    error = v - t
    scale = noise = None
    spread = float(np.sum((t - t.mean()) ** 2))
    if len(v) >= MIN_SCALE_POINTS and spread > 1e-12:
        scale = float(np.sum((t - t.mean()) * (v - v.mean())) / spread)
        residual = v - v.mean() - scale * (t - t.mean())
        noise = float(np.sqrt(np.sum(residual**2) / (len(v) - 2))) if len(v) > 2 else None
    elif len(v) >= 2:
        noise = float(np.std(error, ddof=1))
    per_slot: dict[date, list[float]] = defaultdict(list)
    for (_row, start), e in zip(rows, error, strict=True):
        per_slot[start].append(float(e))
    drift = [
        DriftPoint(
            start=s,
            n=len(per_slot.get(s, [])),
            bias=float(np.mean(per_slot[s])) if per_slot.get(s) else None,
            mae=float(np.mean(np.abs(per_slot[s]))) if per_slot.get(s) else None,
        )
        for s in slots
    ]
    return RaterGoldScore(
        rater=rater,
        n=len(v),
        bias=float(error.mean()),
        scale=scale,
        noise_sd=noise,
        mae=float(np.abs(error).mean()),
        grade_accuracy=float(np.mean([r.grade == r.truth_grade for r, _ in rows])),
        drift=drift,
    )


def gold_ratings() -> list[GoldRating]:
    """Every rating of a gold railcar, with its truth, oldest first (one query)."""
    rows = (
        Rating.objects.filter(railcar__gold__isnull=False)
        .order_by("submitted_at", "id")
        .values_list(
            "annotator__username",
            "railcar_id",
            "contamination_pct",
            "grade",
            "railcar__gold__contamination_pct",
            "railcar__gold__grade",
            "submitted_at",
        )
    )
    return [
        GoldRating(rater, railcar_id, float(pct), grade, float(truth), truth_grade, at)
        for rater, railcar_id, pct, grade, truth, truth_grade, at in rows
    ]


def gold_report() -> list[RaterGoldScore]:
    return score(gold_ratings())
