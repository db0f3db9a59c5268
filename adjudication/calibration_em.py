"""The EM estimator behind adjudication.calibration (see its docstring for the model), and the
constants it is held to. Pure numpy/scipy."""

import numpy as np
from scipy import special

# Used for a rater with no calibration: read as they are.
IDENTITY_NOISE_SD = 1.0
# A scale below this is not trusted (it would blow up the correction): such a rater counts as 1.
# The estimator never returns a scale below it.
MIN_SCALE = 0.25
MAX_SCALE = 4.0
# A rater needs this many ratings in the fit (on railcars rated twice or more, or anchored) to get
# a calibration: below it the prior would dominate and the estimate would mostly add noise.
MIN_RATINGS = 8
# Expert decisions needed before they, not the average rater, define the scale.
MIN_ANCHORS = 10
PRIOR_OFFSET_SD = 0.5
PRIOR_SCALE_SD = 0.2
PRIOR_NOISE_SD = 0.5
PRIOR_NOISE_RATINGS = 4.0
# Ratings have one decimal: their rounding alone is 0.029 points of noise.
MIN_NOISE_SD = 0.05
MIN_TRUTH_SD = 0.05
MAX_ITERATIONS = 3000
TOLERANCE = 1e-7


def em(
    y: np.ndarray,
    car: np.ndarray,
    rater: np.ndarray,
    fixed: np.ndarray,
    truth_fixed: np.ndarray,
    *,
    normalize: bool,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], int, bool]:
    n_cars, n_raters = len(fixed), int(rater.max()) + 1
    counts = np.bincount(rater, minlength=n_raters).astype(float)
    # Each calibrated rater counts once in the normalization, whatever their workload: rater
    # biases are independent draws, so their plain average is the steadiest reading of the truth,
    # where a rating-count weight hands the scale to the two or three busiest raters. A rater
    # with fewer than MIN_RATINGS ratings counts in proportion.
    norm_weights = np.minimum(counts, MIN_RATINGS)
    offset, scale = np.zeros(n_raters), np.ones(n_raters)
    noise_var = np.full(n_raters, PRIOR_NOISE_SD**2)
    start = np.bincount(car, y, n_cars) / np.bincount(car, minlength=n_cars)
    mu, tau_var = float(start.mean()), max(float(start.var()), MIN_TRUTH_SD**2)
    centre = mu
    prior_a, prior_b = 1.0 / PRIOR_OFFSET_SD**2, 1.0 / PRIOR_SCALE_SD**2
    iterations, change = 0, np.inf
    # A rating of 0.0 is a reading at or below 0 that the form cut off: a rater with a negative
    # offset reads every near-clean railcar as 0, which taken at face value flattens their
    # fitted line (scale too low, offset too high). Such ratings enter as their expected reading
    # given that it was at most 0 (a Tobit step), under the current estimates.
    censored = y <= 0.0
    y_data, mean = y, start
    while iterations < MAX_ITERATIONS:
        iterations += 1
        if censored.any() and iterations > 1:
            y = _uncensored(y_data, censored, offset[rater] + scale[rater] * mean[car],
                            np.sqrt(noise_var[rater]))  # fmt: skip
        # E-step: the posterior of each railcar's truth given its ratings.
        w = scale[rater] / noise_var[rater]
        precision = 1.0 / tau_var + np.bincount(car, w * scale[rater], n_cars)
        mean = (mu / tau_var + np.bincount(car, w * (y - offset[rater]), n_cars)) / precision
        var = 1.0 / precision
        mean[fixed], var[fixed] = truth_fixed[fixed], 0.0
        m, v = mean[car], var[car]
        # M-step: each rater's MAP regression of their ratings on the truth, centred on the
        # panel's typical level: the offset prior holds the rater's bias *there* (offset +
        # (scale - 1) * centre), not at a truth of 0 % that no railcar has, where it would
        # trade offset for scale.
        inv = 1.0 / noise_var
        mc, yc = m - centre, y - centre
        s_m = np.bincount(rater, mc, n_raters)
        a11 = counts * inv + prior_a
        a12 = s_m * inv
        a22 = np.bincount(rater, mc * mc + v, n_raters) * inv + prior_b
        r1 = np.bincount(rater, yc, n_raters) * inv
        r2 = np.bincount(rater, yc * mc, n_raters) * inv + prior_b
        det = a11 * a22 - a12 * a12
        new_scale = np.clip((a11 * r2 - a12 * r1) / det, MIN_SCALE, MAX_SCALE)
        # Given the (possibly clipped) scale, the bias at the centre that minimizes the
        # objective, and the offset it makes.
        new_offset = (r1 - new_scale * a12) / a11 - (new_scale - 1.0) * centre
        residual = y - new_offset[rater] - new_scale[rater] * m
        rss = np.bincount(rater, residual**2 + new_scale[rater] ** 2 * v, n_raters)
        new_noise_var = (rss + PRIOR_NOISE_RATINGS * PRIOR_NOISE_SD**2) / (
            counts + PRIOR_NOISE_RATINGS
        )
        new_noise_var = np.maximum(new_noise_var, MIN_NOISE_SD**2)
        mu = float(mean.mean())
        tau_var = max(float(np.mean((mean - mu) ** 2 + var)), MIN_TRUTH_SD**2)
        if normalize:
            # truth' = shift + stretch * truth keeps every rating's fit and puts the average
            # rater at offset 0, scale 1.
            shift = float(np.average(new_offset, weights=norm_weights))
            stretch = float(np.average(new_scale, weights=norm_weights))
            new_offset = new_offset - new_scale * shift / stretch
            new_scale = new_scale / stretch
            mu, tau_var = shift + stretch * mu, max(stretch**2 * tau_var, MIN_TRUTH_SD**2)
        change = max(
            float(np.max(np.abs(new_offset - offset))),
            float(np.max(np.abs(new_scale - scale))),
            float(np.max(np.abs(np.sqrt(new_noise_var) - np.sqrt(noise_var)))),
        )
        offset, scale, noise_var = new_offset, new_scale, new_noise_var
        if change < TOLERANCE:
            break
    params = (offset, np.clip(scale, MIN_SCALE, MAX_SCALE), np.sqrt(noise_var))
    return params, iterations, change < TOLERANCE


def _uncensored(
    y: np.ndarray, censored: np.ndarray, expected: np.ndarray, sd: np.ndarray
) -> np.ndarray:
    """`y` with each censored rating replaced by E[reading | reading <= 0] for a normal reading
    of mean `expected` and SD `sd`."""
    a = (0.0 - expected[censored]) / sd[censored]
    tail = np.maximum(special.ndtr(a), 1e-12)
    out = y.copy()
    out[censored] = expected[censored] - sd[censored] * np.exp(-0.5 * a * a) / (
        np.sqrt(2 * np.pi) * tail
    )
    return out
