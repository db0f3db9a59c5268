"""Active learning on synthetic railcars: after the same labeling budget, is a model trained on
railcars picked by its uncertainty better than one trained on railcars picked at random?

Data. Railcars from the generator (operations/synth.py), rendered in memory at a low resolution,
one keyframe per layer (the frame at the magnet's IoU peak, as the product picks it). The truth
is the generator's. Labels come from simulated raters (operations/simulation.py: a panel with
individual offsets, scales and noise, as seed 000 describes): three ratings per railcar, combined
by the product's aggregation rule (adjudication.aggregation.compute with the default policies:
mean contamination, majority grade). A railcar with no grade majority would go to a senior
inspector; the benchmark takes the senior's decision to be the true grade.

Model. The product's own code, database-free: features from `mlloop.features.FeatureExtractor`
(a timm backbone; pretrained weights cannot be downloaded here, so the backbone is randomly
initialised and frozen, seeded like the product does), heads trained by `mlloop.training.fit`,
uncertainty from MC dropout (`mlloop.scoring.predict_many`) combined by `scoring.uncertainty`
with the default adjudication threshold, exactly as the product ranks the pool.

Protocol, per seed: a fixed test split (scored against the truth) and a fixed validation split
(rater labels, for model selection) are drawn once; the rest is the unlabeled pool. Both
strategies start from the same random seed set and add the same number of railcars per round;
after the last round each trains once more and is evaluated on the test split: MAE, R2 and grade
macro F1, beside the predict-the-mean baseline (the mean of its own training labels).

Throughput on CPU is printed too: feature extraction (frames/s), head training (railcars/s, over
all epochs) and MC-dropout scoring (railcars/s). `bin/bench active_learning [--seeds 3 ...]`.
"""

import argparse
import multiprocessing
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np

from tests.benchmarks.common import describe_machine, setup_django

setup_django()

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from adjudication import aggregation  # noqa: E402
from adjudication.policies import METHOD, STD_KIND, STD_THRESHOLD, AggregationPolicy  # noqa: E402
from mlloop import scoring  # noqa: E402
from mlloop.config import ModelConfig  # noqa: E402
from mlloop.features import FeatureExtractor  # noqa: E402
from mlloop.training import Bag, evaluate, fit  # noqa: E402
from operations import synth  # noqa: E402
from operations.simulation import RaterPanel  # noqa: E402
from operations.synth_scrap import GRADES  # noqa: E402
from scrapannot.policy import registered  # noqa: E402

DATA_SEED = 2026
RATERS = 12
PER_RAILCAR = 3


@dataclass(frozen=True)
class Railcar:
    keyframes: list[np.ndarray]  # RGB uint8, one per layer
    railcar_boxes: list[tuple[int, int, int, int]]  # per keyframe, as Frame.railcar_box
    truth_pct: float
    grade: str


def render(args: tuple[int, int, int, tuple[int, int]]) -> Railcar:
    """One synthetic railcar's keyframes (in a worker process: rendering is the slow part)."""
    index, width, height, layers = args
    unloading = synth.render_unloading(
        rng=synth.railcar_rng(seed=DATA_SEED, index=index),
        width=width,
        height=height,
        layers=layers,
        frames_per_layer=1,  # the one grab frame is at the IoU peak: the product's keyframe
        defect_share=0.0,
    )
    grabbed = [i for i, grab in enumerate(unloading.grabs) if grab is not None]
    return Railcar(
        [unloading.frame(i) for i in grabbed],
        [tuple(unloading.railcar_boxes[i]) for i in grabbed],
        unloading.contamination_pct,
        unloading.grade,
    )


@dataclass(frozen=True)
class Labels:
    contamination: np.ndarray  # the consensus the product would store
    grades: np.ndarray  # grade index
    adjudicated_share: float  # railcars the rule would send to a senior inspector


def default_policy() -> AggregationPolicy:
    policies = registered()
    return AggregationPolicy(
        std_threshold=float(policies[STD_THRESHOLD].default),
        std_kind=str(policies[STD_KIND].default),
        method=str(policies[METHOD].default),
    )


def rater_labels(railcars: list[Railcar], rng: np.random.Generator) -> Labels:
    policy = default_policy()
    panel = RaterPanel.draw(rng, RATERS)
    values, grades, sent = [], [], 0
    for railcar in railcars:
        borderline = float(rng.beta(0.6, 3.0))
        ratings = []
        for n, k in enumerate(panel.route(rng, PER_RAILCAR)):
            pct, grade = panel.rate(railcar.truth_pct, railcar.grade, k, rng, borderline=borderline)
            ratings.append(aggregation.RatingInput(n, k, pct, grade))
        result = aggregation.compute(ratings, policy)
        sent += not result.final
        values.append(result.value_pct)
        grades.append(GRADES.index(result.majority_grade or railcar.grade))
    return Labels(np.asarray(values), np.asarray(grades), sent / len(railcars))


def extract(railcars: list[Railcar], config: ModelConfig) -> tuple[list[np.ndarray], float]:
    """Each railcar's bag of layer features, and the frames per second it took."""
    extractor = FeatureExtractor(config)
    images = [Image.fromarray(f) for r in railcars for f in r.keyframes]
    boxes = [box for r in railcars for box in r.railcar_boxes]
    extractor.extract(images[: config.feature_batch], boxes[: config.feature_batch])  # warm up
    start = time.perf_counter()
    features = extractor.extract(images, boxes)
    rate = len(images) / (time.perf_counter() - start)
    bags, at = [], 0
    for railcar in railcars:
        bags.append(features[at : at + len(railcar.keyframes)])
        at += len(railcar.keyframes)
    return bags, rate


@dataclass
class Timing:
    train_railcar_epochs: int = 0
    train_seconds: float = 0.0
    scored: int = 0
    score_seconds: float = 0.0


def train(bags: list[Bag], val: list[Bag], config: ModelConfig, timing: Timing):
    start = time.perf_counter()
    trained = fit(bags, val, config)
    timing.train_seconds += time.perf_counter() - start
    timing.train_railcar_epochs += len(bags) * config.epochs
    return trained


def pick_uncertain(trained, bags: list[np.ndarray], k: int, timing: Timing) -> list[int]:
    threshold = float(registered()[STD_THRESHOLD].default)
    start = time.perf_counter()
    predictions = scoring.predict_many(trained, bags, trained.config.mc_samples)
    timing.score_seconds += time.perf_counter() - start
    timing.scored += len(bags)
    u = [scoring.uncertainty(p, std_threshold=threshold, n_grades=len(GRADES)) for p in predictions]
    return [int(i) for i in np.argsort(u)[::-1][:k]]


def test_metrics(trained, test: list[Bag], train_labels: list[Bag]) -> dict[str, float]:
    result = evaluate(trained, test)
    mean = float(np.mean([b.contamination for b in train_labels]))
    truth = np.asarray([b.contamination for b in test])
    return {
        "mae": result["mae"],
        "r2": result["r2"] if result["r2"] is not None else float("nan"),
        "f1": result["f1_macro"],
        "mean_mae": float(np.abs(truth - mean).mean()),
        "n": len(train_labels),
    }


def run_seed(
    seed: int,
    features: list[np.ndarray],
    railcars: list[Railcar],
    labels: Labels,
    args: argparse.Namespace,
    config: ModelConfig,
    timing: Timing,
) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(railcars))
    test_ids = order[: args.test]
    val_ids = order[args.test : args.test + args.val]
    pool_ids = order[args.test + args.val :]

    def labeled(i: int) -> Bag:
        return Bag(features[i], float(labels.contamination[i]), int(labels.grades[i]))

    test = [
        Bag(features[i], railcars[i].truth_pct, GRADES.index(railcars[i].grade)) for i in test_ids
    ]
    val = [labeled(i) for i in val_ids]
    config = ModelConfig(**{**config.as_dict(), "seed": seed, "grades": tuple(GRADES)})
    seed_set = list(rng.choice(pool_ids, size=args.seed_set, replace=False))
    results = {}
    start_model = train([labeled(i) for i in seed_set], val, config, timing)
    results["seed set only"] = test_metrics(start_model, test, [labeled(i) for i in seed_set])
    for strategy in ("uncertainty", "random"):
        chosen = list(seed_set)
        pick_rng = np.random.default_rng([seed, 1])
        for _round in range(args.rounds):
            rest = [i for i in pool_ids if i not in set(chosen)]
            if strategy == "random":
                chosen += list(pick_rng.choice(rest, size=args.per_round, replace=False))
                continue
            model = train([labeled(i) for i in chosen], val, config, timing)
            picks = pick_uncertain(model, [features[i] for i in rest], args.per_round, timing)
            chosen += [rest[p] for p in picks]
        final = [labeled(i) for i in chosen]
        results[strategy] = test_metrics(train(final, val, config, timing), test, final)
    everything = [labeled(i) for i in pool_ids]
    results["whole pool labeled"] = test_metrics(
        train(everything, val, config, timing), test, everything
    )
    return results


def print_results(seed: int | str, results: dict[str, dict[str, float]]) -> None:
    print(f"\nseed {seed}")
    header = (
        f"{'':<20} {'labeled':>7} {'MAE':>7} {'R2':>7} {'F1':>6} {'mean-MAE':>9} {'MAE/mean':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, m in results.items():
        print(
            f"{name:<20} {m['n']:>7.0f} {m['mae']:7.3f} {m['r2']:7.3f} {m['f1']:6.3f} "
            f"{m['mean_mae']:9.3f} {m['mae'] / m['mean_mae']:8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--test", type=int, default=100, help="test railcars (truth labels)")
    parser.add_argument("--val", type=int, default=40, help="validation railcars (rater labels)")
    parser.add_argument("--pool", type=int, default=180, help="unlabeled pool railcars")
    parser.add_argument("--seed-set", type=int, default=20, help="random railcars to start from")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-round", type=int, default=20, help="railcars labeled per round")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--mc-samples", type=int, default=20)
    parser.add_argument("--width", type=int, default=192, help="rendered frame width (16:9)")
    parser.add_argument("--layers", type=int, nargs=2, default=(2, 4))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    total = args.test + args.val + args.pool
    print(f"Active learning on {total} synthetic railcars; {describe_machine()}")
    print(
        f"torch {torch.__version__}; backbone {args.backbone} (random init, frozen) at "
        f"{args.image_size} px, {torch.get_num_threads()} threads; heads on 1 thread; "
        f"frames {args.width}x{args.width * 9 // 16}"
    )

    start = time.perf_counter()
    jobs = [(i, args.width, args.width * 9 // 16, tuple(args.layers)) for i in range(total)]
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as workers:
        railcars = workers.map(render, jobs, chunksize=8)
    frames = sum(len(r.keyframes) for r in railcars)
    print(f"rendered {total} railcars, {frames} keyframes in {time.perf_counter() - start:.1f} s")

    config = ModelConfig(
        backbone=args.backbone,
        image_size=args.image_size,
        epochs=args.epochs,
        mc_samples=args.mc_samples,
        feature_batch=64,
    )
    features, frames_per_s = extract(railcars, config)
    # The heads are small: one thread trains and scores them fastest (measured: about 3x the
    # speed of two threads on a busy 2-CPU machine); the backbone above used every core.
    torch.set_num_threads(1)
    labels = rater_labels(railcars, np.random.default_rng(DATA_SEED))
    truth = np.asarray([r.truth_pct for r in railcars])
    print(
        f"rater consensus vs truth: MAE {np.abs(labels.contamination - truth).mean():.3f} pp; "
        f"{labels.adjudicated_share:.0%} of railcars would go to adjudication"
    )
    budget = args.seed_set + args.rounds * args.per_round
    print(
        f"budget: {args.seed_set} random seed railcars + {args.rounds} rounds x {args.per_round} "
        f"= {budget} labeled for training; {args.val} for validation; {args.test} test (truth)"
    )

    timing = Timing()
    per_seed = []
    for seed in range(args.seeds):
        results = run_seed(seed, features, railcars, labels, args, config, timing)
        print_results(seed, results)
        per_seed.append(results)
    mean = {
        name: {k: statistics.fmean(r[name][k] for r in per_seed) for k in per_seed[0][name]}
        for name in per_seed[0]
    }
    print_results(f"mean over {args.seeds}", mean)
    gain = {k: mean["uncertainty"][k] - mean["random"][k] for k in ("mae", "r2", "f1")}
    print(
        f"\nuncertainty minus random (mean): MAE {gain['mae']:+.3f} pp, R2 {gain['r2']:+.3f}, "
        f"F1 {gain['f1']:+.3f}; MAE wins by seed: "
        f"{sum(r['uncertainty']['mae'] < r['random']['mae'] for r in per_seed)}/{args.seeds}"
    )
    print(
        f"\nthroughput on CPU: features {frames_per_s:.0f} frames/s; head training "
        f"{timing.train_railcar_epochs / timing.train_seconds:.0f} railcars/s (railcar-epochs); "
        f"MC-dropout scoring ({args.mc_samples} passes) "
        f"{timing.scored / timing.score_seconds:.0f} railcars/s"
    )
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
