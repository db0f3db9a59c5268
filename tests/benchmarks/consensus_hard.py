"""The harder panels of `bin/bench consensus` (tests/benchmarks/consensus_panels.py): the plain
mean (the in-run baseline), the calibration, the calibration with 5 % gold railcars as anchors,
and the true parameters on the scale an unanchored fit reads on (what a perfect fit without
anchors would give); then how well gold recovers each rater's bias and scale once they have 200
ratings.

Run by `python -m tests.benchmarks.bench_consensus` after the standard panels, or alone:
`python -m tests.benchmarks.consensus_hard [--seeds 5]`.
"""

# ruff: noqa: E402 -- Django must be set up before the models are imported.

import argparse
import statistics

import numpy as np

from tests.benchmarks.common import setup_django

setup_django()

from adjudication import calibration
from adjudication.calibration import MIN_RATINGS, Calibration, fit
from tests.benchmarks.bench_consensus import CALIBRATED, MEAN, Row, consensus, print_rows, score
from tests.benchmarks.consensus_panels import PANELS, HardSimulation, hard_simulation

RECOVERY_AFTER = 200


def recovery(hard: HardSimulation, result: calibration.Fit) -> dict[str, float]:
    """Largest and mean error of each rater's offset, scale and bias (offset + (scale - 1) x the
    mean truth: the rater's typical error) over raters with RECOVERY_AFTER ratings or more."""
    counts = np.bincount(
        [r.rater for r in (*hard.sim.ratings, *hard.gold_ratings)],
        minlength=len(hard.sim.panel),
    )
    level = float(np.mean(hard.sim.truth_pct))
    errors: dict[str, list[float]] = {"offset": [], "scale": [], "bias": []}
    for k, rater in enumerate(hard.sim.panel.raters):
        if k == hard.lazy or counts[k] < RECOVERY_AFTER or k not in result.calibrations:
            continue
        c = result.calibrations[k]
        errors["offset"].append(abs(c.offset - rater.offset))
        errors["scale"].append(abs(c.scale - rater.scale))
        true_bias = rater.offset + (rater.scale - 1) * level
        errors["bias"].append(abs(c.offset + (c.scale - 1) * level - true_bias))
    out = {"raters": float(len(errors["scale"]))}
    for key, values in errors.items():
        out[f"{key} max"] = max(values) if values else float("nan")
        out[f"{key} mean"] = statistics.fmean(values) if values else float("nan")
    return out


def panel_scale_truth(hard: HardSimulation) -> dict[int, Calibration]:
    """The raters' true parameters put on the scale an unanchored fit reads on (mean offset 0,
    mean scale 1, each rater weighted as the fit's normalization weighs them: once, or in
    proportion below MIN_RATINGS ratings), the lazy rater left out as the fit leaves it out: what
    a perfect fit without anchors would give. What stays between it and the truth is the bias
    the whole panel shares, which only anchors can remove."""
    raters = hard.sim.panel.raters
    counts = np.bincount([r.rater for r in hard.sim.ratings], minlength=len(raters))
    weights = np.minimum(counts, MIN_RATINGS).astype(float)
    if hard.lazy is not None:
        weights[hard.lazy] = 0.0
    shift = float(np.average([r.offset for r in raters], weights=weights))
    stretch = float(np.average([r.scale for r in raters], weights=weights))
    return {
        k: Calibration(
            r.offset - r.scale * shift / stretch,
            r.scale / stretch,
            r.noise_sd,
            informative=k != hard.lazy,
        )  # fmt: skip
        for k, r in enumerate(raters)
    }


def run_panel(seed: int, kind: str) -> tuple[list[Row], dict[str, float], bool | None]:
    hard = hard_simulation(seed=seed, kind=kind)
    sim = hard.sim
    rows = [score("plain mean", sim, *consensus(sim, MEAN, None))]
    observations = sim.observations()
    now = fit(observations)
    rows.append(score("calibrated", sim, *consensus(sim, CALIBRATED, now.calibrations)))
    gold = [(r.railcar, r.rater, r.contamination_pct) for r in hard.gold_ratings]
    anchors = {len(sim.truth_pct) + g: float(t) for g, t in enumerate(hard.gold_truth)}
    with_gold = fit(observations + gold, anchors=anchors)
    gold_values = consensus(sim, CALIBRATED, with_gold.calibrations)
    rows.append(score("calibrated + 5 % gold", sim, *gold_values))
    floor = consensus(sim, CALIBRATED, panel_scale_truth(hard))
    rows.append(score("perfect fit without anchors", sim, *floor))
    lazy_flagged = None if hard.lazy is None else hard.lazy in now.flagged
    return rows, recovery(hard, with_gold), lazy_flagged


def main_hard(seeds: int) -> None:
    print(
        f"\nHarder panels (tests/benchmarks/consensus_panels.py): {seeds} seeds each, 1000 "
        "railcars, 12 raters, 3 per railcar; gold: 60 gold railcars at 5 % of each rater's leases"
    )
    # {row: {panel: MAE / the plain mean's, per seed}} for every row but the mean.
    ratios: dict[str, dict[str, list[float]]] = {}
    for kind in PANELS:
        per_seed, recoveries, flagged = [], [], 0
        for seed in range(1, seeds + 1):
            rows, recovered, lazy_flagged = run_panel(seed, kind)
            per_seed.append(rows)
            recoveries.append(recovered)
            flagged += bool(lazy_flagged)
            has_lazy = lazy_flagged is not None
        mean_rows = [
            Row(
                name=rows[0].name,
                **{
                    f: statistics.fmean(getattr(r, f) for r in rows)
                    for f in ("mae", "rmse", "mae_final", "mae_panel", "adjudication", "by_std")
                },
            )
            for rows in zip(*per_seed, strict=True)
        ]
        print_rows(f"panel: {kind} (mean over {seeds} seeds)", mean_rows)
        for n, row in enumerate(mean_rows[1:], start=1):
            ratios.setdefault(row.name, {})[kind] = [r[n].mae / r[0].mae for r in per_seed]
        rec = {k: statistics.fmean(r[k] for r in recoveries) for k in recoveries[0]}
        worst = {k: max(r[k] for r in recoveries) for k in recoveries[0] if k.endswith("max")}
        for name, per_kind in ratios.items():
            print(f"{name} / mean MAE per seed: {', '.join(f'{r:.2f}x' for r in per_kind[kind])}")
        if has_lazy:
            print(f"lazy rater flagged in {flagged}/{seeds} seeds")
        print(
            f"gold recovery (raters with >= {RECOVERY_AFTER} ratings, {rec['raters']:.1f} per "
            f"seed): offset err mean {rec['offset mean']:.3f} / worst {worst['offset max']:.3f} "
            f"pp; bias err mean {rec['bias mean']:.3f} / worst {worst['bias max']:.3f} pp; scale "
            f"err mean {rec['scale mean']:.3f} / worst {worst['scale max']:.3f}"
        )
    print()
    for name, per_kind in ratios.items():
        every = [r for values in per_kind.values() for r in values]
        print(
            f"harder panels, {name} / mean MAE: {statistics.fmean(every):.2f}x on average, worst "
            f"panel-seed {max(every):.2f}x, per panel "
            + ", ".join(f"{k} {statistics.fmean(v):.2f}x" for k, v in per_kind.items())
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    main_hard(parser.parse_args().seeds)
