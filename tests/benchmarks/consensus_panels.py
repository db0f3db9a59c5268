"""Harder rater panels for `bin/bench consensus`: a lazy rater, heavy-tailed noise, unequal
workloads (issue 15), and gold railcars in the pool.

Each panel starts from the standard simulated panel (operations.simulation: 12 raters, half of
them stable, truth from the synthetic railcars' skewed distribution) and changes one thing, or
all three at once:

- lazy: one busy rater (twice the median workload) answers near a constant, the panel's typical
  reading, whatever the railcar holds (2.5 % + N(0, 0.15), rounded to 0.1);
- heavy tails: the non-stable raters' noise is Student-t with 2.5 degrees of freedom, scaled to
  their noise SD (one reading in ~30 is off by more than 3 SDs);
- unequal workloads: workloads are log-normal with sigma 1.2, so that two or three raters do half
  of the work and some have a few dozen ratings;
- all: the three together.

Gold: besides the ordinary railcars (each rated by 3), a set of gold railcars with known truth
that each rater meets at 5 % of their leases, as the pool's gold share hands them out.
"""

from dataclasses import dataclass, replace

import numpy as np

from operations.simulation import RaterPanel, SimRater, SimRating, Simulation
from operations.synth import sample_contamination_pct
from operations.synth_scrap import GRADES

PANELS = ("lazy", "heavy tails", "unequal workloads", "all")
LAZY_READING, LAZY_NOISE = 2.5, 0.15
T_DOF = 2.5
WORKLOAD_SIGMA = 1.2
GOLD_SHARE = 0.05
GOLD_RAILCARS = 60


@dataclass(frozen=True)
class HardSimulation:
    sim: Simulation  # the ordinary railcars and their ratings
    lazy: int | None  # the lazy rater's index
    gold_truth: np.ndarray  # truth of the gold railcars, ids len(sim.truth_pct) + k
    gold_ratings: tuple[SimRating, ...]


def _panel(rng: np.random.Generator, kind: str, n: int) -> tuple[RaterPanel, int | None]:
    panel = RaterPanel.draw(rng, n)
    raters = list(panel.raters)
    if kind in ("unequal workloads", "all"):
        raters = [replace(r, workload=float(rng.lognormal(0.0, WORKLOAD_SIGMA))) for r in raters]
    lazy = None
    if kind in ("lazy", "all"):
        lazy = int(rng.integers(n))
        busy = 2.0 * float(np.median([r.workload for r in raters]))
        # As a calibration would see them: a flat line at the typical reading.
        raters[lazy] = SimRater(LAZY_READING, 0.0, LAZY_NOISE, 0.3, busy, False)
    return RaterPanel(tuple(raters)), lazy


def _reading(rater: SimRater, truth: float, rng: np.random.Generator, *, heavy: bool) -> float:
    if heavy and not rater.stable and rater.scale > 0:
        noise = rater.noise_sd * float(rng.standard_t(T_DOF)) / np.sqrt(T_DOF / (T_DOF - 2))
    else:
        noise = float(rng.normal(0.0, rater.noise_sd))
    return round(float(np.clip(rater.offset + rater.scale * truth + noise, 0.0, 100.0)), 1)


def hard_simulation(
    *, seed: int, kind: str, railcars: int = 1000, raters: int = 12, per_railcar: int = 3
) -> HardSimulation:
    rng = np.random.default_rng(50_000 + seed)
    panel, lazy = _panel(rng, kind, raters)
    heavy = kind in ("heavy tails", "all")
    truth = np.array([sample_contamination_pct(rng) for _ in range(railcars)])
    grades = tuple(GRADES[int(rng.integers(len(GRADES)))] for _ in range(railcars))
    ratings = []
    for i in range(railcars):
        for k in panel.route(rng, per_railcar):
            pct = _reading(panel.raters[k], float(truth[i]), rng, heavy=heavy)
            _, grade = panel.rate(float(truth[i]), grades[i], k, rng)
            ratings.append(SimRating(i, k, pct, grade))
    gold_truth = np.array([round(sample_contamination_pct(rng), 1) for _ in range(GOLD_RAILCARS)])
    counts = np.bincount([r.rater for r in ratings], minlength=raters)
    gold_ratings = []
    for k in range(raters):
        # Gold is GOLD_SHARE of all their leases: ordinary ones are the rest.
        n_gold = min(GOLD_RAILCARS, int(round(counts[k] * GOLD_SHARE / (1 - GOLD_SHARE))))
        for g in rng.choice(GOLD_RAILCARS, n_gold, replace=False):
            pct = _reading(panel.raters[k], float(gold_truth[g]), rng, heavy=heavy)
            gold_ratings.append(SimRating(railcars + int(g), k, pct, "3A"))
    return HardSimulation(
        Simulation(panel, truth, grades, tuple(ratings)), lazy, gold_truth, tuple(gold_ratings)
    )
