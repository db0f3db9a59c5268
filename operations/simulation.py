"""Simulated raters with known truth: how well does a consensus recover it?

Seed 000 (section 5) reports that inspectors' readings stray from the consensus by up to 2-3
percentage points, while the most stable stay within 0.5-1 point, "both an individual offset and
a different width of the scale". A `RaterPanel` draws raters of both kinds; each reads a railcar
as offset + scale * truth + noise, clipped to 0-100 and rounded to 0.1 as the rating form does,
and reads its grade with an occasional slip to a neighbouring grade, more often on borderline
railcars. The truth distribution is the synthetic railcars' (operations.synth), so the learning
loop's benchmark can have these raters label those railcars.

Everything is drawn from the generator it is given: one seed, one simulation.
"""

from dataclasses import dataclass

import numpy as np

from adjudication.calibration import Calibration, Observation
from operations.synth import sample_contamination_pct
from operations.synth_scrap import GRADES

# Share of the panel that reads like the most stable inspectors.
STABLE_SHARE = 0.5
# Ferrous grades go by piece size, so a rater slips to the next size up or down; cast iron is a
# different material and is rarely mistaken (for 3AH, at a quarter of the rate).
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "3A": ("3A1",),
    "3A1": ("3A", "3AH"),
    "3AH": ("3A1",),
    "cast iron": ("3AH",),
}
CAST_IRON_SLIP_FACTOR = 0.25
# How much more often a rater slips on a railcar right at a grade boundary (borderline = 1).
BORDERLINE_SLIP = 0.4


@dataclass(frozen=True)
class SimRater:
    offset: float
    scale: float
    noise_sd: float
    grade_slip: float  # chance of reading a neighbouring grade on a clear-cut railcar
    workload: float  # relative share of the railcars this rater takes
    stable: bool


@dataclass(frozen=True)
class RaterPanel:
    raters: tuple[SimRater, ...]

    @classmethod
    def draw(
        cls, rng: np.random.Generator, n: int, *, stable_share: float = STABLE_SHARE
    ) -> "RaterPanel":
        """`n` raters: stable ones (offset within 0.5, scale 0.9-1.1, noise 0.1-0.3 points) and
        the others (offset up to 1.5, scale 0.7-1.4, noise 0.3-0.7), so that at 8 % truth the
        worst read 2-3 points away, as seed 000 reports."""
        raters = []
        for i in range(n):
            stable = i < round(n * stable_share)
            if stable:
                offset = float(np.clip(rng.normal(0.0, 0.2), -0.5, 0.5))
                scale, noise = rng.uniform(0.9, 1.1), rng.uniform(0.1, 0.3)
                slip = rng.uniform(0.01, 0.04)
            else:
                offset = float(np.clip(rng.normal(0.0, 0.6), -1.5, 1.5))
                scale, noise = rng.uniform(0.7, 1.4), rng.uniform(0.3, 0.7)
                slip = rng.uniform(0.03, 0.10)
            workload = rng.gamma(4.0, 0.25)
            raters.append(
                SimRater(offset, float(scale), float(noise), float(slip), float(workload), stable)
            )
        order = rng.permutation(n)  # stable raters are not the first ids
        return cls(tuple(raters[k] for k in order))

    def __len__(self) -> int:
        return len(self.raters)

    def route(self, rng: np.random.Generator, per_railcar: int) -> list[int]:
        """`per_railcar` distinct raters for one railcar, busier raters more often."""
        weights = np.array([r.workload for r in self.raters])
        chosen = rng.choice(len(self.raters), per_railcar, replace=False, p=weights / weights.sum())
        return [int(k) for k in chosen]

    def rate(
        self,
        truth_pct: float,
        true_grade: str,
        rater_index: int,
        rng: np.random.Generator,
        *,
        borderline: float = 0.0,
    ) -> tuple[float, str]:
        """(contamination %, grade) as rater `rater_index` reads this railcar."""
        rater = self.raters[rater_index]
        reading = rater.offset + rater.scale * truth_pct + rng.normal(0.0, rater.noise_sd)
        pct = round(float(np.clip(reading, 0.0, 100.0)), 1)
        slip = rater.grade_slip + BORDERLINE_SLIP * borderline
        if true_grade == "cast iron":
            slip *= CAST_IRON_SLIP_FACTOR
        grade = true_grade
        if rng.random() < slip:
            neighbours = NEIGHBOURS[true_grade]
            grade = neighbours[int(rng.integers(len(neighbours)))]
        return pct, grade

    def true_calibrations(self) -> dict[int, Calibration]:
        """The parameters the raters were drawn with, keyed by rater index (the oracle)."""
        return {k: Calibration(r.offset, r.scale, r.noise_sd) for k, r in enumerate(self.raters)}


@dataclass(frozen=True)
class SimRating:
    railcar: int
    rater: int
    contamination_pct: float
    grade: str


@dataclass(frozen=True)
class Simulation:
    panel: RaterPanel
    truth_pct: np.ndarray
    true_grades: tuple[str, ...]
    ratings: tuple[SimRating, ...]

    def observations(self) -> list[Observation]:
        """(railcar, rater, value) triples, as calibration.fit takes them."""
        return [(r.railcar, r.rater, r.contamination_pct) for r in self.ratings]


def simulate(
    *, seed: int, railcars: int = 600, raters: int = 12, per_railcar: int = 3
) -> Simulation:
    """A panel of `raters`, and `railcars` railcars each rated by `per_railcar` of them."""
    if not 1 <= per_railcar <= raters:
        raise ValueError("per_railcar must be between 1 and the number of raters")
    rng = np.random.default_rng(seed)
    panel = RaterPanel.draw(rng, raters)
    truth = np.array([sample_contamination_pct(rng) for _ in range(railcars)])
    grades = tuple(GRADES[int(rng.integers(len(GRADES)))] for _ in range(railcars))
    ratings = []
    for i in range(railcars):
        # Most railcars are clear-cut; a few sit right at a grade boundary.
        borderline = float(rng.beta(0.6, 3.0))
        for k in panel.route(rng, per_railcar):
            pct, grade = panel.rate(float(truth[i]), grades[i], k, rng, borderline=borderline)
            ratings.append(SimRating(i, k, pct, grade))
    return Simulation(panel, truth, grades, tuple(ratings))
