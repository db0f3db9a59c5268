"""Rater agreement and rater quality, for the agreement page of senior inspectors and admins.

Beside the agreement statistics (adjudication/agreement_statistics.py): per rater the bias, scale,
MAE, adjudication rate and median time, because seed 000 notes that inspectors differ both in
offset and in "width of the scale".

`load` reads what the statistics need in a few queries and `summarize` assembles the page's
figures. Rater names appear here, so nothing in this module may ever reach an annotator.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from statistics import median

from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from adjudication.agreement_statistics import (
    WEEK,
    Kappa,
    bias_scale_mae,
    categories_of,
    choose_period,
    final_confusion,
    fleiss_kappa,
    interval_alpha,
    next_period,
    period_start,
    rater_confusion,
)
from adjudication.models import AdjudicationCase, FinalLabel, RaterCalibration
from adjudication.uninformative import DESCRIPTIONS
from labeling.models import InclusionKind, Mask, Railcar, Rating


@dataclass(frozen=True)
class RatingRow:
    railcar_id: int
    rater: str
    contamination_pct: float
    grade: str
    seconds_spent: int
    submitted_at: datetime


@dataclass(frozen=True)
class FinalRow:
    contamination_pct: float
    grade: str


@dataclass(frozen=True)
class CalibrationRow:
    offset: float
    scale: float
    noise_sd: float
    n_ratings: int
    estimated_at: datetime
    # False: the rater's ratings carry no information (adjudication.uninformative); `flags` why.
    informative: bool = True
    flags: tuple[str, ...] = ()

    @property
    def flag_text(self) -> str:
        return ", ".join(DESCRIPTIONS.get(f, f) for f in self.flags)


@dataclass(frozen=True)
class AgreementData:
    ratings: list[RatingRow]
    finals: dict[int, FinalRow]  # railcar -> its current final label
    adjudicated: set[int]  # railcars that ever had an adjudication case
    calibrations: dict[str, CalibrationRow]  # rater -> their latest calibration


@dataclass(frozen=True)
class Bucket:
    start: date
    period: str
    railcars: int
    alpha: float | None
    kappa: Kappa

    @property
    def label(self) -> str:
        return self.start.isoformat() if self.period == WEEK else self.start.strftime("%Y-%m")


@dataclass(frozen=True)
class RaterQuality:
    rater: str
    n_ratings: int
    n_labeled: int  # ratings of railcars with a final label: what bias, scale and MAE use
    bias: float | None
    scale: float | None
    mae: float | None
    n_settled: int  # rated railcars that were aggregated: final label or adjudication case
    adjudication_rate: float | None
    median_seconds: float | None
    calibration: CalibrationRow | None


@dataclass(frozen=True)
class AgreementReport:
    categories: list[str]
    railcars: int
    ratings: int
    labeled: int
    alpha: float | None
    kappa: Kappa
    period: str
    buckets: list[Bucket]
    rater_confusion: list[list[int]]  # symmetric: rows and columns are the two raters' grades
    final_confusion: list[list[int]]  # rows: final label's grade; columns: the rater's grade
    raters: list[RaterQuality]
    rating_rows: list[RatingRow] = field(default_factory=list)  # what the figures came from


# --- the page's figures ------------------------------------------------------------------------


def _buckets(
    last_rated: dict[int, datetime],
    values: dict[int, list[float]],
    grades: dict[int, list[str]],
    categories: Sequence[str],
) -> tuple[str, list[Bucket]]:
    """Railcars by the period of their last rating; every period from the first to the last is
    listed, empty ones too, so that a gap shows as a gap."""
    period = choose_period(list(last_rated.values()))
    members: dict[date, list[int]] = defaultdict(list)
    for railcar_id, moment in last_rated.items():
        members[period_start(moment, period)].append(railcar_id)
    buckets = []
    if members:
        start, last = min(members), max(members)
        while start <= last:
            ids = members.get(start, [])
            buckets.append(
                Bucket(
                    start=start,
                    period=period,
                    railcars=len(ids),
                    alpha=interval_alpha([values[i] for i in ids]),
                    kappa=fleiss_kappa([grades[i] for i in ids], categories),
                )
            )
            start = next_period(start, period)
    return period, buckets


def summarize(data: AgreementData) -> AgreementReport:
    values: dict[int, list[float]] = defaultdict(list)
    grades: dict[int, list[str]] = defaultdict(list)
    last_rated: dict[int, datetime] = {}
    by_rater: dict[str, list[RatingRow]] = defaultdict(list)
    for row in data.ratings:
        values[row.railcar_id].append(row.contamination_pct)
        grades[row.railcar_id].append(row.grade)
        if row.railcar_id not in last_rated or row.submitted_at > last_rated[row.railcar_id]:
            last_rated[row.railcar_id] = row.submitted_at
        by_rater[row.rater].append(row)
    categories = categories_of(
        [r.grade for r in data.ratings] + [f.grade for f in data.finals.values()]
    )
    period, buckets = _buckets(last_rated, values, grades, categories)
    labeled = [r for r in data.ratings if r.railcar_id in data.finals]
    return AgreementReport(
        categories=categories,
        railcars=len(values),
        ratings=len(data.ratings),
        labeled=len({r.railcar_id for r in labeled}),
        alpha=interval_alpha(list(values.values())),
        kappa=fleiss_kappa(list(grades.values()), categories),
        period=period,
        buckets=buckets,
        rater_confusion=rater_confusion(grades.values(), categories),
        final_confusion=final_confusion(
            ((data.finals[r.railcar_id].grade, r.grade) for r in labeled), categories
        ),
        raters=[_rater_quality(rater, rows, data) for rater, rows in sorted(by_rater.items())],
        rating_rows=data.ratings,
    )


def _rater_quality(rater: str, rows: list[RatingRow], data: AgreementData) -> RaterQuality:
    labeled = [r for r in rows if r.railcar_id in data.finals]
    bias, scale, mae = bias_scale_mae(
        [r.contamination_pct for r in labeled],
        [data.finals[r.railcar_id].contamination_pct for r in labeled],
    )
    # Railcars still waiting for their other raters had no chance to go to adjudication.
    settled = [r for r in rows if r.railcar_id in data.finals or r.railcar_id in data.adjudicated]
    adjudicated = sum(1 for r in settled if r.railcar_id in data.adjudicated)
    return RaterQuality(
        rater=rater,
        n_ratings=len(rows),
        n_labeled=len(labeled),
        bias=bias,
        scale=scale,
        mae=mae,
        n_settled=len(settled),
        adjudication_rate=adjudicated / len(settled) if settled else None,
        median_seconds=float(median(r.seconds_spent for r in rows)) if rows else None,
        calibration=data.calibrations.get(rater),
    )


# --- the database ------------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _ratings(*, since: date | None, until: date | None, line: str) -> QuerySet[Rating]:
    """Ratings of the railcars whose last rating falls within [since, until] (whole days)."""
    ratings = Rating.objects.all()
    if line:
        ratings = ratings.filter(railcar__line=line)
    if since is not None or until is not None:
        railcars = Rating.objects.values("railcar_id").annotate(last=Max("submitted_at"))
        if since is not None:
            railcars = railcars.filter(last__gte=_day_start(since))
        if until is not None:
            railcars = railcars.filter(last__lt=_day_start(until + timedelta(days=1)))
        ratings = ratings.filter(railcar_id__in=railcars.values("railcar_id"))
    return ratings


def load(*, since: date | None = None, until: date | None = None, line: str = "") -> AgreementData:
    ratings = _ratings(since=since, until=until, line=line)
    rows = [
        RatingRow(railcar_id, rater, float(pct), grade, seconds, submitted_at)
        for railcar_id, rater, pct, grade, seconds, submitted_at in ratings.order_by(
            "railcar_id", "id"
        ).values_list(
            "railcar_id",
            "annotator__username",
            "contamination_pct",
            "grade",
            "seconds_spent",
            "submitted_at",
        )
    ]
    if not rows:
        return AgreementData(ratings=[], finals={}, adjudicated=set(), calibrations={})
    rated = ratings.values("railcar_id")
    finals = {
        railcar_id: FinalRow(float(pct), grade)
        for railcar_id, pct, grade in FinalLabel.objects.current()
        .filter(railcar_id__in=rated)
        .values_list("railcar_id", "contamination_pct", "grade")
    }
    adjudicated = set(
        AdjudicationCase.objects.filter(railcar_id__in=rated)
        .values_list("railcar_id", flat=True)
        .distinct()
    )
    calibrations: dict[str, CalibrationRow] = {}
    for rater, *fields in (
        RaterCalibration.objects.filter(annotator_id__in=ratings.values("annotator_id"))
        .order_by("annotator_id", "-estimated_at", "-id")
        .values_list(
            "annotator__username",
            "offset",
            "scale",
            "noise_sd",
            "n_ratings",
            "estimated_at",
            "informative",
            "flags",
        )
    ):
        *numbers, flags = fields
        calibrations.setdefault(rater, CalibrationRow(*numbers, tuple(flags)))
    return AgreementData(
        ratings=rows, finals=finals, adjudicated=adjudicated, calibrations=calibrations
    )


def rated_lines() -> list[str]:
    return list(
        Railcar.objects.filter(ratings__isnull=False)
        .values_list("line", flat=True)
        .distinct()
        .order_by("line")
    )


def agreement_report(
    *, since: date | None = None, until: date | None = None, line: str = ""
) -> AgreementReport:
    return summarize(load(since=since, until=until, line=line))


@dataclass(frozen=True)
class MaskKinds:
    kinds: list[str]  # the policy list, in its order
    rows: list[tuple[str, list[int], int]]  # rater, masks per kind, total


def mask_kinds(
    *, since: date | None = None, until: date | None = None, line: str = ""
) -> MaskKinds:
    """The raters' accepted masks per inclusion kind, on the railcars the report covers (the
    ratings' railcars, filtered as the report filters them)."""
    ratings = _ratings(since=since, until=until, line=line)
    counts = (
        Mask.objects.filter(assignment__rating__in=ratings)
        .values_list("assignment__annotator__username", "kind")
        .annotate(n=Count("id"))
    )
    kinds = list(InclusionKind.values)
    per_rater: dict[str, list[int]] = {}
    for rater, kind, n in counts:
        per_rater.setdefault(rater, [0] * len(kinds))[kinds.index(kind)] += n
    rows = [(rater, row, sum(row)) for rater, row in sorted(per_rater.items())]
    return MaskKinds(kinds=kinds, rows=rows)
