"""Rater calibration: each rater reads contamination as offset + scale * truth + noise.

Seed 000 (section 5) notes that inspectors differ both in offset and in the "width" of their
scale: the most stable stay within 0.5-1 point of the consensus, others drift 2-3 points. Removing
each rater's estimated offset and scale gives the calibrated consensus, offered beside the plain
mean (policy aggregation.method).

The estimator (`fit`, its EM in `calibration_em`) is a one-factor model fitted by EM over every
rated railcar jointly:

    rating[r, i] = offset[r] + scale[r] * truth[i] + noise,  noise ~ t(nu[r], 0, sigma[r]^2)
    truth[i] ~ N(mu, tau^2), with mu and tau estimated from the data

- Robust noise: a rater's noise is Student-t, its degrees of freedom nu[r] fitted per rater
  (Lange, Little & Taylor 1989; `calibration_em`), so a reading several points off weighs less
  in its railcar's truth and in the rater's line; a rater whose noise looks normal gets the
  normal fit. On the heavy-tailed panels of `bin/bench consensus` the worst rater's scale error
  with 5 % gold went from 0.068 to 0.025. The stored noise_sd is the plain SD of the rater's
  residuals, slips included, so the consensus weights a rater who slips less.

- Identifiability: truth is only known up to a shift and a stretch, so after every step the
  parameters are renormalized to a mean offset of 0 and mean scale of 1 over the raters, each
  rater with MIN_RATINGS ratings or more counting once (the calibrated consensus then reads on the
  scale of the average rater; weighting by rating counts handed it to the busiest raters).
- Expert anchors: a senior inspector's decision (a current final label of source "adjudication")
  is a better reading of truth than any consensus, and a gold railcar's truth (labeling.gold: a
  lab analysis, a hand sort, a senior panel) better still, so those railcars enter with their
  truth known (gold first where a railcar has both).
  Once there are at least MIN_ANCHORS of them they also fix the scale, and the renormalization is
  dropped: the calibrated consensus then reads on the experts' scale. With fewer, they would set a
  shift and a stretch from a handful of points, so they are left out as anchors (their ratings
  still count as ordinary ratings).
- Shrinkage (a MAP fit): each rater's offset has a N(0, PRIOR_OFFSET_SD^2) prior and scale a
  N(1, PRIOR_SCALE_SD^2) prior, and the noise variance counts PRIOR_NOISE_RATINGS pseudo-ratings
  at PRIOR_NOISE_SD. A rater with few ratings therefore stays close to "reads as is"; with the
  hundreds a regular rater has, the data dominate.
- A railcar rated once and not anchored says nothing about its rater beyond the truth prior, and
  under a skewed truth distribution it would mostly add bias, so it is left out of the fit.
- Censoring at 0: the form cannot take a reading below 0 %, so a rater with a negative offset
  reads every near-clean railcar as 0.0; taken at face value that flattens their fitted line. A
  0.0 enters the fit as its expected reading given that it was at most 0 (a Tobit step,
  `calibration_em`).
- Raters whose ratings carry no information (adjudication.uninformative: near-constant answers,
  a scale at the floor, noise far above the panel's) would otherwise bend everyone's
  calibration: through the identifiability normalization, a rater answering near a constant
  pulls the whole scale flat. So the fit runs twice, the second time without them; they keep
  the first fit's estimate, marked uninformative, and the consensus leaves them out of its value
  and of the spread that decides adjudication (`calibrated_consensus`).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from adjudication.calibration_em import (  # noqa: F401 - the estimator's constants, re-exported
    IDENTITY_NOISE_SD,
    MAX_ITERATIONS,
    MAX_SCALE,
    MIN_ANCHORS,
    MIN_NOISE_SD,
    MIN_RATINGS,
    MIN_SCALE,
    MIN_TRUTH_SD,
    PRIOR_NOISE_RATINGS,
    PRIOR_NOISE_SD,
    PRIOR_OFFSET_SD,
    PRIOR_SCALE_SD,
    TOLERANCE,
    em,
)
from adjudication.models import FinalLabel, RaterCalibration
from adjudication.uninformative import uninformative
from labeling.gold import gold_truths
from labeling.models import Rating
from scrapannot import audit

# Serializes estimate_and_store runs (an arbitrary constant, distinct from the audit chain's).
_STORE_LOCK_KEY = 0x5C4A_CA1B

Observation = tuple[int, int, float]  # (railcar_id, annotator_id, contamination_pct)


@dataclass(frozen=True)
class Calibration:
    offset: float = 0.0
    scale: float = 1.0
    noise_sd: float = IDENTITY_NOISE_SD
    calibration_id: int | None = None
    # False for a rater whose ratings carry no information (flags say why): left out of the
    # calibrated consensus and its spread.
    informative: bool = True
    flags: tuple[str, ...] = ()

    def correct(self, value: float) -> float:
        """The rater's reading mapped back onto the consensus scale."""
        scale = self.scale if self.scale >= MIN_SCALE else 1.0
        return (value - self.offset) / scale

    @property
    def weight(self) -> float:
        """Inverse variance of a corrected reading: noisy or compressed raters count less."""
        scale = self.scale if self.scale >= MIN_SCALE else 1.0
        sd = max(self.noise_sd, MIN_NOISE_SD)
        return (scale / sd) ** 2


IDENTITY = Calibration()


@dataclass(frozen=True)
class Fit:
    calibrations: dict[int, Calibration]  # raters with at least min_ratings ratings in the fit
    n_ratings: dict[int, int]  # ratings each of those raters had in the fit
    ratings: int
    railcars: int
    anchors: int  # expert labels used as known truth (0 when fewer than MIN_ANCHORS)
    iterations: int
    converged: bool

    @property
    def flagged(self) -> dict[int, tuple[str, ...]]:
        """{rater: why} of the raters found uninformative."""
        return {k: c.flags for k, c in self.calibrations.items() if not c.informative}


def _checked(observations: Iterable[Observation]) -> list[Observation]:
    rows = [(int(c), int(r), float(v)) for c, r, v in observations]
    for railcar, rater, value in rows:
        if not np.isfinite(value) or not 0.0 <= value <= 100.0:
            raise ValueError(f"rating {value!r} of rater {rater} on railcar {railcar} is not 0-100")
    return rows


def fit(
    observations: Iterable[Observation],
    *,
    anchors: Mapping[int, float] | None = None,
    min_ratings: int = MIN_RATINGS,
) -> Fit:
    """Estimate every rater's offset, scale and noise from (railcar, rater, value) triples;
    `anchors` maps railcar ids to expert-decided truth. Raters found uninformative are fitted
    again without: they cannot bend the others' estimates. Pure: no database."""
    rows = _checked(observations)
    first = _fit(rows, anchors=anchors, min_ratings=min_ratings)
    flagged = uninformative(first.calibrations, rows, min_scale=MIN_SCALE)
    if not flagged:
        return first
    kept = [row for row in rows if row[1] not in flagged]
    second = _fit(kept, anchors=anchors, min_ratings=min_ratings)
    calibrations, n_ratings = dict(second.calibrations), dict(second.n_ratings)
    for rater, flags in flagged.items():
        calibrations[rater] = replace(first.calibrations[rater], informative=False, flags=flags)
        n_ratings[rater] = first.n_ratings[rater]
    return Fit(
        dict(sorted(calibrations.items())),
        n_ratings,
        first.ratings,
        first.railcars,
        second.anchors,
        first.iterations + second.iterations,
        second.converged,
    )


def _fit(rows: list[Observation], *, anchors: Mapping[int, float] | None, min_ratings: int) -> Fit:
    rated = {c for c, _, _ in rows}
    known = {c: float(v) for c, v in (anchors or {}).items() if c in rated}
    if len(known) < MIN_ANCHORS or np.ptp(list(known.values())) <= 0:
        known = {}
    per_railcar: dict[int, int] = {}
    for c, _, _ in rows:
        per_railcar[c] = per_railcar.get(c, 0) + 1
    rows = [row for row in rows if per_railcar[row[0]] >= 2 or row[0] in known]
    if not rows:
        return Fit({}, {}, 0, 0, 0, 0, True)
    car_ids, car = np.unique([c for c, _, _ in rows], return_inverse=True)
    rater_ids, rater = np.unique([r for _, r, _ in rows], return_inverse=True)
    y = np.array([v for _, _, v in rows])
    fixed = np.array([int(c) in known for c in car_ids])
    truth_fixed = np.array([known.get(int(c), 0.0) for c in car_ids])
    params, iterations, converged = em(y, car, rater, fixed, truth_fixed, normalize=not known)
    counts = np.bincount(rater, minlength=len(rater_ids))
    calibrations, n_ratings = {}, {}
    for k, annotator in enumerate(rater_ids):
        if counts[k] >= min_ratings:
            offset, scale, noise_sd = (float(p[k]) for p in params)
            calibrations[int(annotator)] = Calibration(offset, scale, noise_sd)
            n_ratings[int(annotator)] = int(counts[k])
    return Fit(calibrations, n_ratings, len(rows), len(car_ids), len(known), iterations, converged)


def estimate(
    observations: Iterable[Observation],
    *,
    anchors: Mapping[int, float] | None = None,
    min_ratings: int = MIN_RATINGS,
) -> dict[int, Calibration]:
    """{annotator id: Calibration} for every rater with at least `min_ratings` usable ratings."""
    return fit(observations, anchors=anchors, min_ratings=min_ratings).calibrations


def _unchanged(row: RaterCalibration | None, calibration: Calibration, n_ratings: int) -> bool:
    return (
        row is not None
        and row.n_ratings == n_ratings
        and abs(row.offset - calibration.offset) < 1e-9
        and abs(row.scale - calibration.scale) < 1e-9
        and abs(row.noise_sd - calibration.noise_sd) < 1e-9
        and row.informative == calibration.informative
        and list(row.flags) == list(calibration.flags)
    )


def _lock_store() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_STORE_LOCK_KEY])


def _latest_rows(annotator_ids: Iterable[int]) -> dict[int, RaterCalibration]:
    latest: dict[int, RaterCalibration] = {}
    for row in RaterCalibration.objects.filter(annotator_id__in=list(annotator_ids)).order_by(
        "annotator_id", "-estimated_at", "-id"
    ):
        latest.setdefault(row.annotator_id, row)
    return latest


def estimate_and_store(
    *, actor: AbstractBaseUser | None = None, actor_label: str | None = None
) -> list[RaterCalibration]:
    """Estimate every rater from all ratings in the database (adjudicated final labels as
    anchors) and store a new calibration for each rater whose estimate changed; one audit event.
    Returns the current calibration of every calibrated rater, ordered by annotator.

    Re-running on unchanged data writes no rows, so consensus fingerprints stay as they are.
    Railcars already aggregated keep their consensus; `aggregation.reapply` re-runs the ones not
    final under the new calibrations."""
    observations = Rating.objects.values_list("railcar_id", "annotator_id", "contamination_pct")
    anchors = dict(
        FinalLabel.objects.current()
        .filter(source=FinalLabel.Source.ADJUDICATION)
        .values_list("railcar_id", "contamination_pct")
    )
    # Gold truth (a lab analysis, a hand sort, a senior panel) outranks a single decision.
    anchors |= {railcar: pct for railcar, (pct, _grade) in gold_truths().items()}
    result = fit(
        ((c, r, float(v)) for c, r, v in observations.iterator(chunk_size=5000)),
        anchors={c: float(v) for c, v in anchors.items()},
    )
    now = timezone.now()
    with transaction.atomic():
        # Two runs at once would both see "no calibration yet" and write twice.
        _lock_store()
        latest = _latest_rows(result.calibrations)
        new_rows = [
            RaterCalibration(
                annotator_id=annotator,
                offset=c.offset,
                scale=c.scale,
                noise_sd=c.noise_sd,
                informative=c.informative,
                flags=list(c.flags),
                n_ratings=result.n_ratings[annotator],
                estimated_at=now,
            )
            for annotator, c in sorted(result.calibrations.items())
            if not _unchanged(latest.get(annotator), c, result.n_ratings[annotator])
        ]
        RaterCalibration.objects.bulk_create(new_rows)
        audit.record(
            action="calibration.estimated",
            actor=actor,
            actor_label=actor_label,
            payload={
                "ratings": result.ratings,
                "railcars": result.railcars,
                "anchors": result.anchors,
                "raters": len(result.calibrations),
                "uninformative": {str(k): list(v) for k, v in result.flagged.items()},
                "written": [row.pk for row in new_rows],
                "unchanged": len(result.calibrations) - len(new_rows),
                "min_ratings": MIN_RATINGS,
                "iterations": result.iterations,
                "converged": result.converged,
            },
        )
        latest.update({row.annotator_id: row for row in new_rows})
    return [latest[annotator] for annotator in sorted(result.calibrations)]


def latest_calibrations(annotator_ids: Iterable[int]) -> dict[int, Calibration]:
    """The newest calibration of each of these raters (raters without one are left out)."""
    found: dict[int, Calibration] = {}
    rows = (
        RaterCalibration.objects.filter(annotator_id__in=list(annotator_ids))
        .order_by("annotator_id", "-estimated_at", "-id")
        .values_list("annotator_id", "offset", "scale", "noise_sd", "id", "informative", "flags")
    )
    for annotator_id, offset, scale, noise_sd, pk, informative, flags in rows:
        found.setdefault(
            annotator_id, Calibration(offset, scale, noise_sd, pk, informative, tuple(flags))
        )
    return found


def calibrated_consensus(
    values: Sequence[float], calibrations: Sequence[Calibration], *, ddof: int
) -> tuple[float, float]:
    """(weighted mean, spread) of the corrected readings; the spread uses `ddof` like the plain
    STD, so the two methods send railcars to adjudication by the same rule. Uninformative raters
    are left out of both while two informative readings remain: their corrected reading is their
    noise magnified up to 1 / MIN_SCALE times, and would decide the spread on its own."""
    pairs = list(zip(values, calibrations, strict=True))
    informative = [(v, c) for v, c in pairs if c.informative]
    if len(informative) >= 2:
        pairs = informative
    corrected = np.array([c.correct(v) for v, c in pairs])
    weights = np.array([c.weight for _, c in pairs])
    estimate = float(np.clip(np.average(corrected, weights=weights), 0.0, 100.0))
    spread = float(np.std(corrected, ddof=ddof)) if len(corrected) > ddof else 0.0
    return estimate, spread
