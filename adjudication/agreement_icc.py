"""Agreement for continuous ratings: intraclass correlations and Lin's concordance.

- ICC(2,1) and ICC(3,1) of Shrout & Fleiss (1979), from the two-way ANOVA of an n x k table
  (n railcars, each rated by the same k raters), with their F-based confidence intervals:
  ICC(3,1) (fixed raters, consistency) by the exact F interval, ICC(2,1) (random raters,
  absolute agreement) by Satterthwaite's approximation (Shrout & Fleiss, eqs. 7-8; McGraw & Wong
  1996). ICC(2,1) counts a rater who reads 1 point high as disagreeing; ICC(3,1) does not.
- Lin's (1989) concordance correlation coefficient, CCC = 2 s_xy / (s_x^2 + s_y^2 + (mean_x -
  mean_y)^2) with the 1/n moments Lin uses, and its interval from the asymptotic variance of its
  Fisher z (Lin 1989, eq. 9 onwards): the agreement of a rater with another or with gold truth.

Our own, in numpy/scipy: statsmodels has no ICC, and pingouin (not installed) would bring pandas
and plotting libraries for a few lines of arithmetic. Tested against Shrout & Fleiss's worked
example (tests/adjudication/test_agreement_icc.py).
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
MIN_TARGETS = 5  # below this a coefficient and its interval say nothing useful


@dataclass(frozen=True)
class Coefficient:
    value: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class IccResult:
    icc21: Coefficient
    icc31: Coefficient


def icc(table: np.ndarray, *, confidence: float = CONFIDENCE) -> IccResult | None:
    """ICC(2,1) and ICC(3,1) of an n x k table (rows: railcars, columns: raters), or None with
    fewer than MIN_TARGETS rows, fewer than 2 columns, or no variation at all."""
    x = np.asarray(table, dtype=float)
    if x.ndim != 2 or x.shape[0] < MIN_TARGETS or x.shape[1] < 2 or not np.isfinite(x).all():
        return None
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * float(np.sum((x.mean(axis=1) - grand) ** 2))
    ss_cols = n * float(np.sum((x.mean(axis=0) - grand) ** 2))
    ss_error = float(np.sum((x - grand) ** 2)) - ss_rows - ss_cols
    df_rows, df_cols, df_error = n - 1, k - 1, (n - 1) * (k - 1)
    msr, msc, mse = ss_rows / df_rows, ss_cols / df_cols, max(ss_error, 0.0) / df_error
    if msr + (k - 1) * mse <= 0:
        return None
    tail = 1 - (1 - confidence) / 2
    icc3 = (msr - mse) / (msr + (k - 1) * mse)
    icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    if mse <= 0:
        # Raters agree exactly (up to a shift for ICC(3,1)): no interval to speak of.
        return IccResult(
            Coefficient(float(icc2), float(icc2), float(icc2), n),
            Coefficient(float(icc3), float(icc3), float(icc3), n),
        )
    f0 = msr / mse
    f_low = f0 / stats.f.ppf(tail, df_rows, df_error)
    f_high = f0 * stats.f.ppf(tail, df_error, df_rows)
    icc31 = Coefficient(
        float(icc3), float((f_low - 1) / (f_low + k - 1)), float((f_high - 1) / (f_high + k - 1)), n
    )
    # Satterthwaite's degrees of freedom for the denominator of ICC(2,1).
    a = k * icc2 / (n * (1 - icc2)) if icc2 < 1 else 0.0
    b = 1 + k * icc2 * (n - 1) / (n * (1 - icc2)) if icc2 < 1 else 1.0
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / df_cols + (b * mse) ** 2 / df_error)
    f_star = stats.f.ppf(tail, df_rows, v)
    f_star_high = stats.f.ppf(tail, v, df_rows)
    base = k * msc + (k * n - k - n) * mse
    low = n * (msr - f_star * mse) / (f_star * base + n * msr)
    high = n * (f_star_high * msr - mse) / (base + n * f_star_high * msr)
    icc21 = Coefficient(float(icc2), float(low), float(high), n)
    return IccResult(icc21, icc31)


def concordance(
    x: np.ndarray, y: np.ndarray, *, confidence: float = CONFIDENCE
) -> Coefficient | None:
    """Lin's CCC of paired readings with its interval, or None with fewer than MIN_TARGETS pairs
    or when either side does not vary and the two do not agree exactly."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < MIN_TARGETS or len(y) != n:
        return None
    mx, my = x.mean(), y.mean()
    sxx, syy = float(np.mean((x - mx) ** 2)), float(np.mean((y - my) ** 2))
    sxy = float(np.mean((x - mx) * (y - my)))
    denominator = sxx + syy + (mx - my) ** 2
    if denominator <= 0:
        return Coefficient(1.0, 1.0, 1.0, n)  # identical constant readings
    ccc = 2 * sxy / denominator
    if sxx <= 0 or syy <= 0 or abs(ccc) >= 1:
        return Coefficient(float(ccc), float(ccc), float(ccc), n)
    r = sxy / np.sqrt(sxx * syy)
    u2 = (mx - my) ** 2 / np.sqrt(sxx * syy)
    # Lin (1989): the variance of z = atanh(CCC).
    var_z = (
        (1 - r**2) * ccc**2 / ((1 - ccc**2) * r**2)
        + 2 * ccc**3 * (1 - ccc) * u2 / (r * (1 - ccc**2) ** 2)
        - ccc**4 * u2**2 / (2 * r**2 * (1 - ccc**2) ** 2)
    ) / (n - 2)
    z = np.arctanh(ccc)
    half = stats.norm.ppf(1 - (1 - confidence) / 2) * np.sqrt(max(var_z, 0.0))
    return Coefficient(float(ccc), float(np.tanh(z - half)), float(np.tanh(z + half)), n)
