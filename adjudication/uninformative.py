"""Raters whose ratings carry no information, found from their calibration and their ratings.

A rater who answers near a constant (a "lazy" rater), whose fitted scale sits at the estimator's
floor, or whose noise is far above the panel's says next to nothing about a railcar's truth. Left
in, such a rater bends everyone's calibration through the identifiability normalization and,
once corrected (divided by a scale near the floor), decides the calibrated spread on their own.
`adjudication.calibration` fits again without them and leaves them out of the consensus; the
agreement page flags them for a senior inspector.
"""

from collections.abc import Iterable, Mapping
from typing import Protocol

import numpy as np

# A scale within this of the floor, a spread of ratings below this share of the panel's median
# spread, or noise above this multiple of the panel's median noise (and above an absolute floor,
# so that a panel of very precise raters does not flag an ordinary one).
SCALE_FLOOR_MARGIN = 0.05
CONSTANT_SHARE = 0.25
NOISE_MULTIPLE = 3.0
NOISE_FLAG_FLOOR = 0.5
SCALE_AT_FLOOR = "scale_at_floor"
NEAR_CONSTANT = "near_constant"
NOISY = "noise_far_above_panel"
DESCRIPTIONS = {
    SCALE_AT_FLOOR: "scale at the floor",
    NEAR_CONSTANT: "near-constant answers",
    NOISY: "noise far above the panel's",
}


class Estimate(Protocol):
    scale: float
    noise_sd: float


def uninformative(
    calibrations: Mapping[int, Estimate],
    rows: Iterable[tuple[int, int, float]],
    *,
    min_scale: float,
) -> dict[int, tuple[str, ...]]:
    """{rater: why} for the calibrated raters whose ratings carry no information, from their
    estimates and their (railcar, rater, value) ratings. Relative tests need a panel (3 raters
    or more), and at least 2 informative raters must remain."""
    if len(calibrations) < 3:
        return {}
    values: dict[int, list[float]] = {k: [] for k in calibrations}
    for _, rater, value in rows:
        if rater in values:
            values[rater].append(value)
    spread = {k: float(np.std(v)) if v else 0.0 for k, v in values.items()}
    median_spread = float(np.median(list(spread.values())))
    median_noise = float(np.median([c.noise_sd for c in calibrations.values()]))
    flagged: dict[int, tuple[str, ...]] = {}
    for k, c in calibrations.items():
        flags = []
        if c.scale <= min_scale + SCALE_FLOOR_MARGIN:
            flags.append(SCALE_AT_FLOOR)
        if spread[k] < CONSTANT_SHARE * median_spread:
            flags.append(NEAR_CONSTANT)
        if c.noise_sd > max(NOISE_MULTIPLE * median_noise, NOISE_FLAG_FLOOR):
            flags.append(NOISY)
        if flags:
            flagged[k] = tuple(flags)
    if len(calibrations) - len(flagged) < 2:
        return {}
    return flagged
