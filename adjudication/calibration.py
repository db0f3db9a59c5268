"""Rater calibration: each rater reads contamination as offset + scale * truth + noise.

Seed 000 notes that inspectors differ both in offset and in "width of the scale". Removing each
rater's estimated offset and scale gives the calibrated consensus, offered beside the plain mean
(policy aggregation.method).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from adjudication.models import RaterCalibration

# Used for a rater with no calibration: read as they are.
IDENTITY_NOISE_SD = 1.0
# A scale below this is not trusted (it would blow up the correction): such a rater counts as 1.
MIN_SCALE = 0.25


@dataclass(frozen=True)
class Calibration:
    offset: float = 0.0
    scale: float = 1.0
    noise_sd: float = IDENTITY_NOISE_SD
    calibration_id: int | None = None

    def correct(self, value: float) -> float:
        """The rater's reading mapped back onto the consensus scale."""
        scale = self.scale if self.scale >= MIN_SCALE else 1.0
        return (value - self.offset) / scale

    @property
    def weight(self) -> float:
        """Inverse variance of a corrected reading: noisy or compressed raters count less."""
        scale = self.scale if self.scale >= MIN_SCALE else 1.0
        sd = max(self.noise_sd, 0.05)
        return (scale / sd) ** 2


IDENTITY = Calibration()


def latest_calibrations(annotator_ids: Iterable[int]) -> dict[int, Calibration]:
    """The newest calibration of each of these raters (raters without one are left out)."""
    found: dict[int, Calibration] = {}
    rows = (
        RaterCalibration.objects.filter(annotator_id__in=list(annotator_ids))
        .order_by("annotator_id", "-estimated_at", "-id")
        .values_list("annotator_id", "offset", "scale", "noise_sd", "id")
    )
    for annotator_id, offset, scale, noise_sd, pk in rows:
        found.setdefault(annotator_id, Calibration(offset, scale, noise_sd, pk))
    return found


def calibrated_consensus(
    values: Sequence[float], calibrations: Sequence[Calibration], *, ddof: int
) -> tuple[float, float]:
    """(weighted mean, spread) of the corrected readings; the spread uses `ddof` like the plain
    STD, so the two methods send railcars to adjudication by the same rule."""
    corrected = np.array([c.correct(v) for v, c in zip(values, calibrations, strict=True)])
    weights = np.array([c.weight for c in calibrations])
    estimate = float(np.clip(np.average(corrected, weights=weights), 0.0, 100.0))
    spread = float(np.std(corrected, ddof=ddof)) if len(corrected) > ddof else 0.0
    return estimate, spread
