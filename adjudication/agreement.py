"""Rater agreement and rater quality, for the agreement page of senior inspectors and admins.

Fleiss' kappa of grades comes from `statsmodels` (imported inside `fleiss_kappa`: importing it
pulls in pandas, 0.5 to 1.3 s here, which no other page should pay). Krippendorff's alpha
(interval) of contamination is computed here in closed form and tested against the `krippendorff`
package, whose `alpha` builds a units x values x values array: for 2,000 railcars with 212
distinct one-decimal values it took 14 s and 2 GB of memory (tests/benchmarks/bench_aggregation.py
compares the two on 500 railcars); with all 1,001 possible values it would need tens of GB.
Beside them: grade confusion matrices, and per rater the bias, scale, MAE, adjudication rate and
median time, because seed 000 notes that inspectors differ both in offset and in "width of the
scale".

The statistics are pure functions over plain sequences; `load` reads what they need in a few
queries and `summarize` assembles the page's figures. Rater names appear here, so nothing in this
module may ever reach an annotator.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import chain, combinations
from statistics import median

import numpy as np
from django.db.models import Max, QuerySet
from django.utils import timezone

from adjudication.models import AdjudicationCase, FinalLabel, RaterCalibration
from labeling.annotation_models import Grade
from labeling.models import Railcar, Rating

# Below this many railcars a coefficient swings by a tenth or more with a single railcar, so the
# page shows "n/a" rather than a figure that looks meaningful.
MIN_RAILCARS = 5
# A rater's scale is a regression slope: fewer points than this give no honest slope.
MIN_SCALE_POINTS = 3
WEEK, MONTH = "week", "month"


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


@dataclass(frozen=True)
class AgreementData:
    ratings: list[RatingRow]
    finals: dict[int, FinalRow]  # railcar -> its current final label
    adjudicated: set[int]  # railcars that ever had an adjudication case
    calibrations: dict[str, CalibrationRow]  # rater -> their latest calibration


@dataclass(frozen=True)
class Kappa:
    """Fleiss' kappa needs the same number of raters on every railcar: it is computed over the
    railcars with the most common count, and `left_out` says how many had another count."""

    value: float | None
    railcars: int
    raters: int
    left_out: int


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


# --- statistics over plain sequences -----------------------------------------------------------


def categories_of(grades: Iterable[str]) -> list[str]:
    """The grade choices in their usual order, then any other grade found (kept, not dropped,
    so that a count never silently disappears)."""
    known = list(Grade.values)
    return known + sorted(set(grades) - set(known))


def interval_alpha(values_per_railcar: Sequence[Sequence[float]]) -> float | None:
    """Krippendorff's alpha, interval metric, in closed form: with n pairable values, m_u in
    railcar u and SS the sums of squared deviations from the mean (within u, and over all),

        alpha = 1 - (n - 1) * sum_u(m_u * SS_u / (m_u - 1)) / (n * SS_all).

    It is the coincidence-matrix definition summed out (the squared differences of all pairs of
    m values are 2 m SS), so it needs no value-by-value matrix; the tests hold it to
    `krippendorff.alpha` and to Krippendorff's published example. Who gave which value does not
    matter, only the values within each railcar."""
    pairable = [v for v in values_per_railcar if len(v) >= 2]
    if len(pairable) < MIN_RAILCARS:
        return None
    sizes = np.fromiter((len(v) for v in pairable), dtype=float, count=len(pairable))
    values = np.fromiter(chain.from_iterable(pairable), dtype=float, count=int(sizes.sum()))
    if np.ptp(values) == 0:
        return None  # a single value everywhere: expected disagreement is 0, alpha is 0/0
    unit = np.repeat(np.arange(len(pairable)), sizes.astype(int))
    unit_means = np.bincount(unit, weights=values) / sizes
    within = np.bincount(unit, weights=(values - unit_means[unit]) ** 2)
    total = float(np.sum((values - values.mean()) ** 2))
    n = len(values)
    return float(1.0 - (n - 1) * np.sum(sizes * within / (sizes - 1)) / (n * total))


def fleiss_kappa(grades_per_railcar: Sequence[Sequence[str]], categories: Sequence[str]) -> Kappa:
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

    pairable = [g for g in grades_per_railcar if len(g) >= 2]
    sizes = Counter(len(g) for g in pairable)
    if not sizes:
        return Kappa(value=None, railcars=0, raters=0, left_out=0)
    raters = max(sizes, key=lambda n: (sizes[n], n))
    group = [g for g in pairable if len(g) == raters]
    left_out = len(pairable) - len(group)
    column = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(group), len(categories)), dtype=int)
    for row, grades in enumerate(group):
        for grade in grades:
            table[row, column[grade]] += 1
    value = None
    # With one grade only, chance agreement is 1 and kappa is 0/0.
    if len(group) >= MIN_RAILCARS and np.count_nonzero(table.sum(axis=0)) >= 2:
        value = float(statsmodels_fleiss_kappa(table, method="fleiss"))
    return Kappa(value=value, railcars=len(group), raters=raters, left_out=left_out)


def rater_confusion(
    grades_per_railcar: Iterable[Sequence[str]], categories: Sequence[str]
) -> list[list[int]]:
    """Each unordered pair of ratings of one railcar, counted both ways (a symmetric matrix;
    an agreeing pair adds 2 on the diagonal)."""
    index = {c: i for i, c in enumerate(categories)}
    matrix = [[0] * len(categories) for _ in categories]
    for grades in grades_per_railcar:
        for a, b in combinations(grades, 2):
            matrix[index[a]][index[b]] += 1
            matrix[index[b]][index[a]] += 1
    return matrix


def final_confusion(pairs: Iterable[tuple[str, str]], categories: Sequence[str]) -> list[list[int]]:
    """(final grade, rater's grade) pairs: rows are the final label, columns the rater."""
    index = {c: i for i, c in enumerate(categories)}
    matrix = [[0] * len(categories) for _ in categories]
    for final, rated in pairs:
        matrix[index[final]][index[rated]] += 1
    return matrix


def bias_scale_mae(
    values: Sequence[float], truths: Sequence[float]
) -> tuple[float | None, float | None, float | None]:
    """A rater's readings against the final labels: mean signed deviation, least-squares slope
    of reading on label (1 = the label's width of scale), mean absolute deviation.

    The final label is often the mean of ratings that include this rater's own, which pulls
    bias and scale toward the consensus; with 3 raters by a third."""
    if not values:
        return None, None, None
    v, t = np.asarray(values, dtype=float), np.asarray(truths, dtype=float)
    deviation = v - t
    scale = None
    spread = float(np.sum((t - t.mean()) ** 2))
    if len(v) >= MIN_SCALE_POINTS and spread > 1e-12:
        scale = float(np.sum((t - t.mean()) * (v - v.mean())) / spread)
    return float(deviation.mean()), scale, float(np.abs(deviation).mean())


def period_start(moment: datetime, period: str) -> date:
    day = timezone.localtime(moment).date() if timezone.is_aware(moment) else moment.date()
    return day - timedelta(days=day.weekday()) if period == WEEK else day.replace(day=1)


def next_period(start: date, period: str) -> date:
    if period == WEEK:
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def choose_period(moments: Sequence[datetime]) -> str:
    """Weeks, unless fewer than half of the weeks between the first and the last railcar hold
    enough railcars for a coefficient; then months."""
    if not moments:
        return WEEK
    weeks = Counter(period_start(m, WEEK) for m in moments)
    span = (max(weeks) - min(weeks)).days // 7 + 1
    busy = sum(1 for n in weeks.values() if n >= MIN_RAILCARS)
    return WEEK if busy * 2 >= span else MONTH


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
            "annotator__username", "offset", "scale", "noise_sd", "n_ratings", "estimated_at"
        )
    ):
        calibrations.setdefault(rater, CalibrationRow(*fields))
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
