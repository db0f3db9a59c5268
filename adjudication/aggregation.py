"""Aggregation of a railcar's ratings (seed 000, section 6.1).

Contamination: the mean (or the calibrated consensus, by policy) with its STD as the reliability
indicator. Grade: majority vote. A spread above the threshold, or no grade with more than half of
the votes, sends the railcar to a senior inspector (`adjudicate`); otherwise the consensus becomes
its final label, with its provenance.

`aggregate_railcar` runs in a worker after the railcar's last needed rating commits. It is
idempotent: the railcar row is locked, a railcar with a final label is left alone, and a result
whose inputs (ratings, calibrations, policies) are unchanged writes nothing.
"""

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from adjudication import labels
from adjudication.calibration import (
    IDENTITY,
    Calibration,
    calibrated_consensus,
    latest_calibrations,
)
from adjudication.models import AdjudicationCase, Consensus, FinalLabel, Method
from adjudication.policies import AggregationPolicy, aggregation_policy
from labeling.models import GoldRailcar, Railcar, Rating
from scrapannot import audit
from scrapannot.audit import canonical_json

# Ratings have one decimal, so a spread exactly at the threshold must not tip over it by a
# floating-point hair (10.0, 10.4, 10.8 has a sample STD of 0.4000000000000004).
EPSILON = 1e-9
STD_ABOVE_THRESHOLD = "std_above_threshold"
NO_GRADE_MAJORITY = "no_grade_majority"
AGGREGATABLE = (Railcar.Status.RATED, Railcar.Status.IN_ADJUDICATION)


@dataclass(frozen=True)
class RatingInput:
    rating_id: int
    annotator_id: int
    contamination_pct: float
    grade: str


@dataclass(frozen=True)
class Result:
    n_ratings: int
    mean_pct: float
    std_pct: float
    calibrated_pct: float | None
    calibrated_std_pct: float | None
    value_pct: float
    method: str
    grade_votes: dict[str, int]
    majority_grade: str
    reasons: list[str] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return not self.reasons

    def disagreement(self, threshold: float) -> float:
        # The spread of the method that decided, so the queue order matches the reason.
        spread = self.calibrated_std_pct if self.method == Method.CALIBRATED else self.std_pct
        ratio = spread / threshold if threshold > 0 else spread
        return round(ratio + (1.0 if not self.majority_grade else 0.0), 6)


def majority(votes: Sequence[str]) -> str:
    """The grade with more than half the votes, or "" (a tie or a plurality is not a majority:
    with 4 raters, 2-1-1 goes to the senior inspector)."""
    if not votes:
        return ""
    grade, count = Counter(votes).most_common(1)[0]
    return grade if count * 2 > len(votes) else ""


def compute(
    ratings: Sequence[RatingInput],
    policy: AggregationPolicy,
    calibrations: dict[int, Calibration] | None = None,
) -> Result:
    """The aggregation rule, free of the database."""
    values = [r.contamination_pct for r in ratings]
    ddof = policy.ddof if len(values) > policy.ddof else 0
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=ddof))
    calibrated = calibrated_std = None
    if calibrations:
        per_rating = [calibrations.get(r.annotator_id, IDENTITY) for r in ratings]
        calibrated, calibrated_std = calibrated_consensus(values, per_rating, ddof=ddof)
    use_calibrated = policy.method == Method.CALIBRATED and calibrated is not None
    value = calibrated if use_calibrated else mean
    spread = calibrated_std if use_calibrated else std
    votes = [r.grade for r in ratings]
    winner = majority(votes)
    reasons = []
    if spread > policy.std_threshold + EPSILON:
        reasons.append(STD_ABOVE_THRESHOLD)
    if not winner:
        reasons.append(NO_GRADE_MAJORITY)
    return Result(
        n_ratings=len(values),
        mean_pct=mean,
        std_pct=std,
        calibrated_pct=calibrated,
        calibrated_std_pct=calibrated_std,
        value_pct=value,
        method=Method.CALIBRATED.value if use_calibrated else Method.MEAN.value,
        grade_votes=dict(sorted(Counter(votes).items())),
        majority_grade=winner,
        reasons=reasons,
    )


def one_decimal(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


def rating_inputs(railcar_id: int) -> list[RatingInput]:
    return [
        RatingInput(pk, annotator_id, float(pct), grade)
        for pk, annotator_id, pct, grade in Rating.objects.filter(railcar_id=railcar_id)
        .order_by("id")
        .values_list("id", "annotator_id", "contamination_pct", "grade")
    ]


def _fingerprint(
    ratings: Sequence[RatingInput], policy: AggregationPolicy, calibrations: dict[int, Calibration]
) -> str:
    content = {
        "ratings": [[r.rating_id, r.annotator_id, r.contamination_pct, r.grade] for r in ratings],
        "calibrations": sorted(c.calibration_id for c in calibrations.values()),
        "policy": policy.as_dict(),
    }
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def aggregate_railcar(
    *, railcar_id: int, actor: AbstractBaseUser | None = None
) -> Consensus | None:
    """Aggregate a fully rated railcar; its consensus, or None when there is nothing to do
    (gone, not fully rated, already final)."""
    now = timezone.now()
    with transaction.atomic():
        railcar = Railcar.objects.select_for_update().filter(pk=railcar_id).first()
        if railcar is None or railcar.status not in AGGREGATABLE:
            return None
        # A gold railcar's ratings score raters (adjudication.gold_scores): never a label.
        if GoldRailcar.objects.filter(railcar=railcar).exists():
            return None
        ratings = rating_inputs(railcar_id)
        if not ratings or len(ratings) < railcar.raters_needed:
            return None
        # A reopened railcar keeps its label until a senior inspector decides: never recompute.
        if FinalLabel.objects.current().filter(railcar=railcar).exists():
            return None
        # Row locks first, the audit chain's lock last (see audit.record).
        case = (
            AdjudicationCase.objects.select_for_update()
            .filter(railcar=railcar, status=AdjudicationCase.Status.OPEN)
            .first()
        )
        policy = aggregation_policy()
        calibrations = latest_calibrations(r.annotator_id for r in ratings)
        fingerprint = _fingerprint(ratings, policy, calibrations)
        existing = Consensus.objects.filter(railcar=railcar).first()
        if existing is not None and existing.fingerprint == fingerprint:
            return existing
        result = compute(ratings, policy, calibrations)
        consensus, _ = Consensus.objects.update_or_create(
            railcar=railcar,
            defaults={
                "n_ratings": result.n_ratings,
                "mean_pct": result.mean_pct,
                "std_pct": result.std_pct,
                "std_kind": policy.std_kind,
                "calibrated_pct": result.calibrated_pct,
                "calibrated_std_pct": result.calibrated_std_pct,
                "method": result.method,
                "value_pct": result.value_pct,
                "grade_votes": result.grade_votes,
                "majority_grade": result.majority_grade,
                "std_threshold": policy.std_threshold,
                "reasons": result.reasons,
                "outcome": Consensus.Outcome.FINAL
                if result.final
                else Consensus.Outcome.ADJUDICATION,
                "disagreement": result.disagreement(policy.std_threshold),
                "fingerprint": fingerprint,
                "computed_at": now,
            },
        )
        if result.final:
            # Under the current policies the consensus is final: nobody needs to decide.
            if case is not None:
                case.status, case.closed_at = AdjudicationCase.Status.WITHDRAWN, now
                case.save(update_fields=["status", "closed_at"])
        else:
            case = labels.send_to_adjudication(
                railcar=railcar,
                reasons=result.reasons,
                disagreement=consensus.disagreement,
                at=now,
                case=case,
            )
        audit.record(
            action="aggregation.computed",
            actor=actor,
            obj=railcar,
            payload={
                "outcome": consensus.outcome,
                "reasons": result.reasons,
                "mean_pct": round(result.mean_pct, 4),
                "std_pct": round(result.std_pct, 4),
                "calibrated_pct": None
                if result.calibrated_pct is None
                else round(result.calibrated_pct, 4),
                "grade_votes": result.grade_votes,
                "policy": policy.as_dict(),
                "ratings": [r.rating_id for r in ratings],
                "case": case.pk if case is not None else None,
            },
        )
        if result.final:
            # After the aggregation's event, which explains it. Nothing here waits on a row lock
            # while this transaction holds the audit chain's: the railcar is locked above, and it
            # has no current label to supersede.
            labels.set_final_label(
                railcar=railcar,
                contamination_pct=one_decimal(result.value_pct),
                grade=result.majority_grade,
                source=FinalLabel.Source.CONSENSUS,
                method=result.method,
                rating_ids=[r.rating_id for r in ratings],
                consensus=consensus,
                actor=actor,
                at=now,
                policy=policy,
                calibrations=calibrations,
            )
    return consensus


def reapply(*, actor: AbstractBaseUser | None) -> dict[str, int]:
    """Re-run aggregation, under the current policies, on every railcar that is rated but not
    final; one audit event with what changed. Railcars with a final label are never touched."""
    policy = aggregation_policy()
    outcomes: Counter[str] = Counter()
    ids = list(
        Railcar.objects.filter(status__in=AGGREGATABLE).order_by("id").values_list("id", flat=True)
    )
    for railcar_id in ids:
        consensus = aggregate_railcar(railcar_id=railcar_id, actor=actor)
        outcomes[consensus.outcome if consensus is not None else "skipped"] += 1
    summary = {"railcars": len(ids), **outcomes}
    with transaction.atomic():
        audit.record(
            action="aggregation.reapplied",
            actor=actor,
            payload={"policy": policy.as_dict(), **summary},
        )
    return summary


def reapply_preview() -> dict[str, int]:
    """What `reapply` would do under the current policies, without doing it: per outcome, and
    how many railcars would change outcome (or get their first consensus). Read-only."""
    policy = aggregation_policy()
    counts: Counter[str] = Counter()
    railcars = Railcar.objects.filter(status__in=AGGREGATABLE).order_by("id")
    outcomes = dict(
        Consensus.objects.filter(railcar__in=railcars).values_list("railcar_id", "outcome")
    )
    labelled = set(
        FinalLabel.objects.current()
        .filter(railcar__in=railcars)
        .values_list("railcar_id", flat=True)
    ) | set(GoldRailcar.objects.filter(railcar__in=railcars).values_list("railcar_id", flat=True))
    for railcar_id, raters_needed in railcars.values_list("id", "raters_needed"):
        ratings = rating_inputs(railcar_id)
        if not ratings or len(ratings) < raters_needed or railcar_id in labelled:
            counts["skipped"] += 1
            continue
        calibrations = latest_calibrations(r.annotator_id for r in ratings)
        result = compute(ratings, policy, calibrations)
        outcome = Consensus.Outcome.FINAL if result.final else Consensus.Outcome.ADJUDICATION
        counts[outcome] += 1
        counts["changing"] += outcomes.get(railcar_id) != outcome
    return {"railcars": sum(counts[k] for k in (*Consensus.Outcome.values, "skipped")), **counts}
