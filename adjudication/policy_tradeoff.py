"""The policy trade-off: what the last N weeks would have given under another aggregation
method or STD threshold, computed from the stored ratings, shown on the policies page before an
admin switches (scrapannot.policy_previews).

For each candidate (method x threshold):
- adjudication rate: the share of the window's rated railcars (gold ones aside) the rule would
  have sent to a senior inspector, with today's calibrations;
- against gold: the window's ratings of each gold railcar, taken in submission order in panels
  of pool.raters_per_railcar, each put through the same rule: how many would have gone to a
  senior, and the MAE against the gold truth of those whose consensus would have become the
  final label by itself (the senior inspector decides the rest).

Read-only; one pass over the ratings, the rule's spreads computed once per railcar (`compute`),
each candidate then only compares them with its threshold.
"""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from adjudication.aggregation import EPSILON, RatingInput, Result, compute
from adjudication.calibration import latest_calibrations
from adjudication.models import Method
from adjudication.policies import aggregation_policy
from labeling.models import GoldRailcar, Rating
from labeling.policies import RATERS_PER_RAILCAR
from scrapannot.policy import policy_value
from scrapannot.policy_previews import Preview, register_preview

DEFAULT_WEEKS, MAX_WEEKS = 8, 104
THRESHOLD_FACTORS = (0.75, 1.0, 1.25, 1.5)


@dataclass(frozen=True)
class Candidate:
    method: str
    threshold: float
    current: bool
    railcars: int
    adjudication_rate: float | None
    gold_panels: int
    gold_adjudication_rate: float | None
    gold_final: int
    gold_mae: float | None


def _sent(result: Result, method: str, threshold: float) -> bool:
    spread = (
        result.calibrated_std_pct
        if method == Method.CALIBRATED and result.calibrated_std_pct is not None
        else result.std_pct
    )
    # Raters without any calibration read as the mean, as aggregation does.
    return spread > threshold + EPSILON or not result.majority_grade


def _value(result: Result, method: str) -> float:
    if method == Method.CALIBRATED and result.calibrated_pct is not None:
        return result.calibrated_pct
    return result.mean_pct


def _window_ratings(
    weeks: int,
) -> tuple[dict[int, list[RatingInput]], list[tuple[float, list[RatingInput]]]]:
    """The window's ratings of ordinary railcars by railcar, and of gold railcars as panels of
    pool.raters_per_railcar (truth, ratings) in submission order."""
    since = timezone.now() - timedelta(weeks=weeks)
    gold = dict(GoldRailcar.objects.values_list("railcar_id", "contamination_pct"))
    ordinary: dict[int, list[RatingInput]] = defaultdict(list)
    gold_rows: dict[int, list[RatingInput]] = defaultdict(list)
    rows = (
        Rating.objects.filter(submitted_at__gte=since)
        .order_by("railcar_id", "submitted_at", "id")
        .values_list("id", "railcar_id", "annotator_id", "contamination_pct", "grade")
    )
    for pk, railcar_id, annotator_id, pct, grade in rows:
        target = gold_rows if railcar_id in gold else ordinary
        target[railcar_id].append(RatingInput(pk, annotator_id, float(pct), grade))
    panels = []
    size = int(policy_value(RATERS_PER_RAILCAR))
    for railcar_id, ratings in gold_rows.items():
        for start in range(0, len(ratings) - size + 1, size):
            panels.append((float(gold[railcar_id]), ratings[start : start + size]))
    return ordinary, panels


def tradeoff(*, weeks: int = DEFAULT_WEEKS, extra_threshold: float | None = None) -> dict:
    policy = aggregation_policy()
    ordinary, panels = _window_ratings(weeks)
    size = int(policy_value(RATERS_PER_RAILCAR))
    annotators = {r.annotator_id for rs in ordinary.values() for r in rs}
    annotators |= {r.annotator_id for _, rs in panels for r in rs}
    calibrations = latest_calibrations(annotators)
    # The spreads of both methods, once per railcar (the method in `policy` does not matter).
    results = [compute(rs, policy, calibrations) for rs in ordinary.values() if len(rs) >= 2]
    gold_results = [(truth, compute(rs, policy, calibrations)) for truth, rs in panels]
    thresholds = sorted(
        {round(policy.std_threshold * f, 3) for f in THRESHOLD_FACTORS}
        | ({round(extra_threshold, 3)} if extra_threshold is not None else set())
    )
    candidates = []
    for method in Method.values:
        for threshold in thresholds:
            sent = [_sent(r, method, threshold) for r in results]
            gold_sent = [_sent(r, method, threshold) for _, r in gold_results]
            errors = [
                abs(_value(r, method) - truth)
                for (truth, r), s in zip(gold_results, gold_sent, strict=True)
                if not s
            ]
            candidates.append(
                Candidate(
                    method=method,
                    threshold=threshold,
                    current=method == policy.method
                    and abs(threshold - policy.std_threshold) < 1e-9,
                    railcars=len(results),
                    adjudication_rate=float(np.mean(sent)) if sent else None,
                    gold_panels=len(gold_results),
                    gold_adjudication_rate=float(np.mean(gold_sent)) if gold_sent else None,
                    gold_final=len(errors),
                    gold_mae=float(np.mean(errors)) if errors else None,
                )
            )
    return {"weeks": weeks, "panel_size": size, "policy": policy, "candidates": candidates}


def _context(params: Mapping[str, str]) -> dict[str, Any]:
    try:
        weeks = min(max(int(params.get("weeks", DEFAULT_WEEKS)), 1), MAX_WEEKS)
    except ValueError:
        weeks = DEFAULT_WEEKS
    try:
        extra = float(params["threshold"]) if params.get("threshold") else None
    except ValueError:
        extra = None
    if extra is not None and not 0.0 <= extra <= 100.0:
        extra = None
    return tradeoff(weeks=weeks, extra_threshold=extra)


def register_tradeoff_preview() -> None:
    register_preview(
        Preview(name="aggregation", template="adjudication/policy_tradeoff.html", context=_context)
    )
