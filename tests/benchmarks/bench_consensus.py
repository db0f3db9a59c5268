"""Beyond the mean: how much closer to the truth is the calibrated consensus?

Simulated raters with known truth (operations/simulation.py: offsets, scale widths and noise as
seed 000 describes its inspectors): per seed, a panel of raters and railcars each rated by 3 of
them. Every railcar goes through the real rule, `aggregation.compute` under the default policy
(STD threshold 0.4, sample STD, grade majority), with:

- plain mean (the baseline);
- calibrated: calibrations estimated from the simulated ratings themselves (`calibration.fit`);
- calibrated + experts: the same, with the railcars the plain mean sends to adjudication decided
  by a simulated senior inspector (truth + N(0, EXPERT_SD), rounded to 0.1) used as anchors;
- oracle: the raters' true parameters, the ceiling of what calibration can do.

It prints MAE and RMSE of the consensus to the truth over all railcars and over those that became
final without adjudication, MAE to the panel's reading of the truth (the average rater's offset and
scale applied to it: what a consensus without expert anchors can at best recover; the rest is the
bias the whole panel shares), the adjudication rate (and the part of it due to the STD rule), the
ratio calibrated / mean MAE, and how the estimated offsets, scales and noise compare with the
true ones. Estimates without anchors read on the average rater's scale (mean offset 0, mean scale
1), so they are compared with the true parameters normalized the same way; anchored estimates are
compared with the raw true parameters.

Then the harder panels of issue 15 (tests/benchmarks/consensus_hard.py): a lazy rater,
heavy-tailed noise, unequal workloads, all three, and 5 % gold railcars.

No database is needed: `python -m tests.benchmarks.bench_consensus [--seeds 10]`, or
`bin/bench consensus`.
"""

# ruff: noqa: E402 -- Django must be set up before the models are imported.

import argparse
import statistics
import time
from dataclasses import dataclass

import numpy as np

from tests.benchmarks.common import setup_django

setup_django()

from adjudication.aggregation import STD_ABOVE_THRESHOLD, RatingInput, compute
from adjudication.calibration import Calibration, Fit, fit
from adjudication.policies import AggregationPolicy
from operations.simulation import Simulation, simulate

EXPERT_SD = 0.1
MEAN = AggregationPolicy(std_threshold=0.4, std_kind="sample", method="mean")
CALIBRATED = AggregationPolicy(std_threshold=0.4, std_kind="sample", method="calibrated")


@dataclass(frozen=True)
class Row:
    name: str
    mae: float
    rmse: float
    mae_final: float
    mae_panel: float
    adjudication: float
    by_std: float


def consensus(
    sim: Simulation, policy: AggregationPolicy, calibrations: dict[int, Calibration] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, final?, sent for its spread?) per railcar, by the real aggregation rule."""
    per_railcar: list[list[RatingInput]] = [[] for _ in sim.truth_pct]
    for n, r in enumerate(sim.ratings):
        per_railcar[r.railcar].append(RatingInput(n, r.rater, r.contamination_pct, r.grade))
    results = [compute(inputs, policy, calibrations) for inputs in per_railcar]
    return (
        np.array([r.value_pct for r in results]),
        np.array([r.final for r in results]),
        np.array([STD_ABOVE_THRESHOLD in r.reasons for r in results]),
    )


def panel_reading(sim: Simulation) -> np.ndarray:
    """The truth as the panel's average rater reads it (true offsets and scales, weighted by
    ratings): what a consensus without expert anchors can at best recover."""
    counts = np.bincount([r.rater for r in sim.ratings], minlength=len(sim.panel)).astype(float)
    offset = np.average([r.offset for r in sim.panel.raters], weights=counts)
    scale = np.average([r.scale for r in sim.panel.raters], weights=counts)
    return offset + scale * sim.truth_pct


def score(
    name: str, sim: Simulation, values: np.ndarray, final: np.ndarray, by_std: np.ndarray
) -> Row:
    error = values - sim.truth_pct
    return Row(
        name,
        mae=float(np.mean(np.abs(error))),
        rmse=float(np.sqrt(np.mean(error**2))),
        mae_final=float(np.mean(np.abs(error[final]))) if final.any() else float("nan"),
        mae_panel=float(np.mean(np.abs(values - panel_reading(sim)))),
        adjudication=float(np.mean(~final)),
        by_std=float(np.mean(by_std)),
    )


def expert_anchors(sim: Simulation, sent: np.ndarray, seed: int) -> dict[int, float]:
    rng = np.random.default_rng(10_000 + seed)
    decided = np.flatnonzero(sent)
    labels = np.clip(sim.truth_pct[decided] + rng.normal(0.0, EXPERT_SD, len(decided)), 0, 100)
    return {int(i): round(float(v), 1) for i, v in zip(decided, labels, strict=True)}


def recovery(sim: Simulation, result: Fit, *, normalized: bool) -> dict[str, float]:
    """Estimated against true parameters of the calibrated raters: MAE and correlation."""
    raters = sorted(result.calibrations)
    counts = np.array([result.n_ratings[k] for k in raters], dtype=float)
    offset = np.array([sim.panel.raters[k].offset for k in raters])
    scale = np.array([sim.panel.raters[k].scale for k in raters])
    noise = np.array([sim.panel.raters[k].noise_sd for k in raters])
    if normalized:
        shift, stretch = np.average(offset, weights=counts), np.average(scale, weights=counts)
        offset, scale = offset - scale * shift / stretch, scale / stretch
    est = {
        "offset": np.array([result.calibrations[k].offset for k in raters]),
        "scale": np.array([result.calibrations[k].scale for k in raters]),
        "noise": np.array([result.calibrations[k].noise_sd for k in raters]),
    }
    true = {"offset": offset, "scale": scale, "noise": noise}
    out = {}
    for key in est:
        out[f"{key} MAE"] = float(np.mean(np.abs(est[key] - true[key])))
        out[f"{key} r"] = float(np.corrcoef(est[key], true[key])[0, 1])
    out["raters"] = len(raters)
    return out


def run_seed(seed: int, args: argparse.Namespace) -> tuple[list[Row], dict[str, dict], float, int]:
    sim = simulate(
        seed=seed, railcars=args.railcars, raters=args.raters, per_railcar=args.per_railcar
    )
    rows = []
    mean_values, mean_final, mean_std = consensus(sim, MEAN, None)
    rows.append(score("plain mean", sim, mean_values, mean_final, mean_std))

    start = time.perf_counter()
    estimated = fit(sim.observations())
    fit_seconds = time.perf_counter() - start
    rows.append(score("calibrated", sim, *consensus(sim, CALIBRATED, estimated.calibrations)))

    anchors = expert_anchors(sim, ~mean_final, seed)
    anchored = fit(sim.observations(), anchors=anchors)
    values, final, by_std = consensus(sim, CALIBRATED, anchored.calibrations)
    rows.append(score("calibrated + experts", sim, values, final, by_std))

    oracle = sim.panel.true_calibrations()
    rows.append(score("oracle (true parameters)", sim, *consensus(sim, CALIBRATED, oracle)))
    recovered = {
        "calibrated": recovery(sim, estimated, normalized=True),
        "calibrated + experts": recovery(sim, anchored, normalized=False),
    }
    return rows, recovered, fit_seconds, anchored.anchors


def print_rows(title: str, rows: list[Row]) -> None:
    width = max(len(r.name) for r in rows)
    header = (
        f"{'':<{width}}  {'MAE':>6}  {'RMSE':>6}  {'MAE final':>9}  {'MAE panel':>9}  "
        f"{'adjudicated':>11}  "
        f"{'by STD':>6}  {'MAE x mean':>10}"
    )
    print(f"\n{title}\n{header}\n{'-' * len(header)}")
    base = rows[0].mae
    for r in rows:
        print(
            f"{r.name:<{width}}  {r.mae:6.3f}  {r.rmse:6.3f}  {r.mae_final:9.3f}  "
            f"{r.mae_panel:9.3f}  "
            f"{r.adjudication:10.1%}  {r.by_std:6.1%}  {r.mae / base:9.2f}x"
        )


def print_recovery(recovered: dict[str, dict]) -> None:
    keys = ["offset MAE", "offset r", "scale MAE", "scale r", "noise MAE", "noise r"]
    width = max(len(k) for k in recovered)
    print(f"{'parameters':<{width}}  " + "  ".join(f"{k:>10}" for k in keys))
    for name, values in recovered.items():
        print(f"{name:<{width}}  " + "  ".join(f"{values[k]:10.3f}" for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--railcars", type=int, default=600)
    parser.add_argument("--raters", type=int, default=12)
    parser.add_argument("--per-railcar", type=int, default=3)
    parser.add_argument("--hard-seeds", type=int, default=5, help="seeds per harder panel")
    args = parser.parse_args()
    print(
        f"Consensus on simulated raters: {args.railcars} railcars, {args.raters} raters, "
        f"{args.per_railcar} per railcar, {args.seeds} seeds; policy {MEAN.as_dict()}"
    )
    per_seed: list[list[Row]] = []
    recoveries: list[dict[str, dict]] = []
    seconds = []
    for seed in range(1, args.seeds + 1):
        rows, recovered, fit_seconds, anchors = run_seed(seed, args)
        per_seed.append(rows)
        recoveries.append(recovered)
        seconds.append(fit_seconds)
        print_rows(
            f"seed {seed} (estimation {fit_seconds * 1e3:.0f} ms; {anchors} expert anchors)", rows
        )
        print_recovery(recovered)

    mean_rows = [
        Row(
            name=rows[0].name,
            **{
                field: statistics.fmean(getattr(r, field) for r in rows)
                for field in ("mae", "rmse", "mae_final", "mae_panel", "adjudication", "by_std")
            },
        )
        for rows in zip(*per_seed, strict=True)
    ]
    print_rows(f"mean over {args.seeds} seeds", mean_rows)
    print_recovery(
        {
            name: {k: statistics.fmean(r[name][k] for r in recoveries) for k in recoveries[0][name]}
            for name in recoveries[0]
        }
    )
    ratios = [rows[1].mae / rows[0].mae for rows in per_seed]
    print(
        f"\ncalibrated / mean MAE: {statistics.fmean(ratios):.2f}x "
        f"(per seed {min(ratios):.2f}x .. {max(ratios):.2f}x); adjudication rate "
        f"{mean_rows[0].adjudication:.1%} -> {mean_rows[1].adjudication:.1%}; "
        f"estimation median {statistics.median(seconds) * 1e3:.0f} ms"
    )
    if args.hard_seeds:
        # Imported here: that module imports this one's helpers.
        from tests.benchmarks.consensus_hard import main_hard

        main_hard(args.hard_seeds)


if __name__ == "__main__":
    main()
