"""The EM estimator behind adjudication.calibration (see its docstring for the model), and the
constants it is held to. Pure numpy/scipy.

Robust residuals: a rater's noise is Student-t with nu[r] degrees of freedom, fitted by EM as a
scale mixture of normals (Lange, Little & Taylor 1989, "Robust statistical modeling using the t
distribution", JASA 84:881-896): each rating carries a weight u = (nu + 1) / (nu + d^2), d its
residual in units of the rater's noise scale, in both the railcar's truth (E-step) and the
rater's regression (M-step); nu is chosen per rater by maximizing the t likelihood of their
residuals (their ECME step, Liu & Rubin 1994) over NU_GRID, whose last value reads as normal.
Why: one reading in ~30 several SDs off (a slip of the hand, a misread railcar) is enough, under a
normal likelihood, to move a railcar's truth for every rater on it and so everyone's scale; a
rater with normal noise gets nu at the top of the grid and the fit of before.
"""

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
# Degrees of freedom a rater's noise may take; 1e6 is the normal. Below 2 the variance is
# infinite and a rater's line would rest on their few closest readings, so the grid stops at 2.
NU_GRID = np.array([2.0, 2.5, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 25.0, 50.0, 1e6])
# nu is re-chosen every this many iterations and then held, so that a rater hovering between two
# grid values cannot keep the EM from converging.
NU_EVERY = 20
# Fixed-point steps of the t scale per candidate nu when choosing nu.
PROFILE_STEPS = 15


def em(
    y: np.ndarray,
    car: np.ndarray,
    rater: np.ndarray,
    fixed: np.ndarray,
    truth_fixed: np.ndarray,
    *,
    normalize: bool,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], int, bool]:
    """((offset, scale, noise SD) per rater, iterations, converged?). The noise SD is the plain
    SD of the rater's residuals, as the consensus weights and the uninformative test read it;
    the t scale behind the weights stays inside."""
    n_cars, n_raters = len(fixed), int(rater.max()) + 1
    counts = np.bincount(rater, minlength=n_raters).astype(float)
    # Each calibrated rater counts once in the normalization, whatever their workload: rater
    # biases are independent draws, so their plain average is the steadiest reading of the truth,
    # where a rating-count weight hands the scale to the two or three busiest raters. A rater
    # with fewer than MIN_RATINGS ratings counts in proportion.
    norm_weights = np.minimum(counts, MIN_RATINGS)
    offset, scale = np.zeros(n_raters), np.ones(n_raters)
    noise_var = np.full(n_raters, PRIOR_NOISE_SD**2)  # the t scale squared
    nu = np.full(n_raters, NU_GRID[-1])
    u = np.ones(len(y))
    start = np.bincount(car, y, n_cars) / np.bincount(car, minlength=n_cars)
    mu, tau_var = float(start.mean()), max(float(start.var()), MIN_TRUTH_SD**2)
    centre = mu
    prior_a, prior_b = 1.0 / PRIOR_OFFSET_SD**2, 1.0 / PRIOR_SCALE_SD**2
    prior_noise = PRIOR_NOISE_RATINGS * PRIOR_NOISE_SD**2
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
        # E-step: the posterior of each railcar's truth given its ratings, each weighted by its
        # t weight u (1 for a rater read as normal).
        w = u * scale[rater] / noise_var[rater]
        precision = 1.0 / tau_var + np.bincount(car, w * scale[rater], n_cars)
        mean = (mu / tau_var + np.bincount(car, w * (y - offset[rater]), n_cars)) / precision
        var = 1.0 / precision
        mean[fixed], var[fixed] = truth_fixed[fixed], 0.0
        m, v = mean[car], var[car]
        # M-step: each rater's weighted MAP regression of their ratings on the truth, centred on
        # the panel's typical level: the offset prior holds the rater's bias *there* (offset +
        # (scale - 1) * centre), not at a truth of 0 % that no railcar has, where it would
        # trade offset for scale.
        inv = 1.0 / noise_var
        mc, yc = m - centre, y - centre
        a11 = np.bincount(rater, u, n_raters) * inv + prior_a
        a12 = np.bincount(rater, u * mc, n_raters) * inv
        a22 = np.bincount(rater, u * (mc * mc + v), n_raters) * inv + prior_b
        r1 = np.bincount(rater, u * yc, n_raters) * inv
        r2 = np.bincount(rater, u * yc * mc, n_raters) * inv + prior_b
        det = a11 * a22 - a12 * a12
        new_scale = np.clip((a11 * r2 - a12 * r1) / det, MIN_SCALE, MAX_SCALE)
        # Given the (possibly clipped) scale, the bias at the centre that minimizes the
        # objective, and the offset it makes.
        new_offset = (r1 - new_scale * a12) / a11 - (new_scale - 1.0) * centre
        squared = (y - new_offset[rater] - new_scale[rater] * m) ** 2 + new_scale[rater] ** 2 * v
        rss = np.bincount(rater, u * squared, n_raters)
        new_noise_var = np.maximum(
            (rss + prior_noise) / (counts + PRIOR_NOISE_RATINGS), MIN_NOISE_SD**2
        )
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
        if iterations % NU_EVERY == 0 or change < TOLERANCE:
            new_nu, profiled = _degrees_of_freedom(squared, rater, n_raters)
            if not np.array_equal(new_nu, nu):
                nu, change = new_nu, np.inf
                noise_var = np.maximum(profiled, MIN_NOISE_SD**2)
        # The t weights for the next E-step, from this step's residuals.
        u = (nu[rater] + 1.0) / (nu[rater] + squared / noise_var[rater])
        if change < TOLERANCE:
            break
    sd = np.sqrt(np.maximum((np.bincount(rater, squared, n_raters) + prior_noise)
                            / (counts + PRIOR_NOISE_RATINGS), MIN_NOISE_SD**2))  # fmt: skip
    params = (offset, np.clip(scale, MIN_SCALE, MAX_SCALE), sd)
    return params, iterations, change < TOLERANCE


def _degrees_of_freedom(
    squared: np.ndarray, rater: np.ndarray, n_raters: int
) -> tuple[np.ndarray, np.ndarray]:
    """(nu, t scale squared) per rater: the NU_GRID value whose t likelihood of the rater's
    squared residuals, at its own maximum-likelihood scale, is highest."""
    nu = NU_GRID[:, None]
    # One bincount over (grid value, rater) pairs sums every candidate at once.
    cell = (np.arange(len(NU_GRID))[:, None] * n_raters + rater[None, :]).ravel()
    size = len(NU_GRID) * n_raters

    def per_rater(values: np.ndarray) -> np.ndarray:
        return np.bincount(cell, values.ravel(), size).reshape(len(NU_GRID), n_raters)

    counts = np.maximum(np.bincount(rater, minlength=n_raters), 1)
    scale2 = np.maximum(per_rater(np.broadcast_to(squared, (len(NU_GRID), len(squared))))
                        / counts, MIN_NOISE_SD**2)  # fmt: skip
    for _ in range(PROFILE_STEPS):  # the t scale's EM fixed point for each nu
        weights = (nu + 1.0) / (nu + squared / scale2[:, rater])
        scale2 = np.maximum(per_rater(weights * squared) / counts, MIN_NOISE_SD**2)
    per_rating = (
        special.gammaln((nu + 1.0) / 2.0)
        - special.gammaln(nu / 2.0)
        - 0.5 * np.log(nu * scale2[:, rater])
        - (nu + 1.0) / 2.0 * np.log1p(squared / (nu * scale2[:, rater]))
    )
    best = np.argmax(per_rater(per_rating), axis=0)
    return NU_GRID[best], scale2[best, np.arange(n_raters)]


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
