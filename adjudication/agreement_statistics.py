"""Agreement statistics over plain sequences: Krippendorff's alpha (interval) of contamination,
Fleiss' kappa of grades, grade confusion matrices, a rater's bias, scale and MAE against the final
labels, and the weeks or months the agreement page groups railcars by.

Fleiss' kappa comes from `statsmodels` (imported inside `fleiss_kappa`: importing it pulls in
pandas, 0.5 to 1.3 s here, which no other page should pay). Krippendorff's alpha is computed here
in closed form and tested against the `krippendorff` package, whose `alpha` builds a units x
values x values array: for 2,000 railcars with 212 distinct one-decimal values it took 14 s and
2 GB of memory (tests/benchmarks/bench_aggregation.py compares the two on 500 railcars); with all
1,001 possible values it would need tens of GB. Pure functions: adjudication/agreement_report.py
reads the ratings and assembles the page's figures from these.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import chain, combinations

import numpy as np
from django.utils import timezone

from labeling.annotation_models import Grade

# Below this many railcars a coefficient swings by a tenth or more with a single railcar, so the
# page shows "n/a" rather than a figure that looks meaningful.
MIN_RAILCARS = 5
# A rater's scale is a regression slope: fewer points than this give no honest slope.
MIN_SCALE_POINTS = 3
WEEK, MONTH = "week", "month"


@dataclass(frozen=True)
class Kappa:
    """Fleiss' kappa needs the same number of raters on every railcar: it is computed over the
    railcars with the most common count, and `left_out` says how many had another count."""

    value: float | None
    railcars: int
    raters: int
    left_out: int


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
