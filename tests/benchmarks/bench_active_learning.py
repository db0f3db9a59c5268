"""Active learning on synthetic railcars: after the same labeling budget, is a model trained on
railcars picked by its uncertainty better than one trained on railcars picked at random?

Data. Railcars from the generator (operations/synth.py), rendered in memory at camera-like width
(640x360 by default), one keyframe per layer (the frame at the magnet's IoU peak, as the product
picks it). The truth is the generator's. Labels come from simulated raters
(operations/simulation.py: a panel with individual offsets, scales and noise, as seed 000
describes): three ratings per railcar, combined by the product's aggregation rule
(adjudication.aggregation.compute with the default policies). A railcar with no grade majority
would go to a senior inspector; the benchmark takes the senior's decision to be the true grade.

Model. The product's own code, database-free: features from `mlloop.features.FeatureExtractor`
(the default backbone, ImageNet EfficientNet-Lite0 from its package, frozen; or `--backbone X
--weights none` for a random init), heads trained by `mlloop.training.fit` (a bootstrap ensemble),
uncertainty from `mlloop.scoring.predict_many` and `mlloop.selection`, batches ordered by
`selection.diverse_order`, exactly as the product ranks the pool.

Protocol, per seed: a fixed test split (scored against the truth) and a fixed validation split
(rater labels, for model selection) are drawn once; the rest is the unlabeled pool. Both
strategies start from the same random seed set and add `--per-round` railcars per round; after
every round each is trained and evaluated on the test split: MAE, R2 and grade macro F1, beside
the predict-the-mean baseline (the mean of its own training labels). The mean curves give the
label count at which uncertainty reaches random's MAE at 100 labels (linear interpolation), and
the Spearman correlation of the uncertainty with the absolute error on the test split.

Throughput on CPU is printed too: feature extraction (frames/s), head training (railcar-epochs/s)
and scoring (railcars/s). `bin/bench active_learning [--seeds 10 ...]`.
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
from scipy import ndimage  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from adjudication import aggregation  # noqa: E402
from adjudication.policies import METHOD, STD_KIND, STD_THRESHOLD, AggregationPolicy  # noqa: E402
from mlloop import scoring  # noqa: E402
from mlloop.config import ModelConfig, weights_digest  # noqa: E402
from mlloop.features import FeatureExtractor, crop_box  # noqa: E402
from mlloop.finetune import finetune, image_bags  # noqa: E402
from mlloop.inclusion import InclusionHead, cell_targets, fit_inclusion_head, summary  # noqa: E402
from mlloop.selection import diverse_order  # noqa: E402
from mlloop.training import Bag, evaluate, fit  # noqa: E402
from operations import synth  # noqa: E402
from operations import synth_scene as scene  # noqa: E402
from operations.simulation import RaterPanel  # noqa: E402
from operations.synth_scrap import GRADES, SOIL  # noqa: E402
from scrapannot.policy import registered  # noqa: E402

DATA_SEED = 2026
RATERS = 12
PER_RAILCAR = 3


MASK_RATERS = 3
MASK_DROP = 0.25  # share of inclusion pieces a simulated annotator misses
MASK_STEP = 4  # the raters' mean coverage is kept at 1/4 of the crop's resolution


@dataclass(frozen=True)
class Railcar:
    keyframes: list[np.ndarray]  # RGB uint8, one per layer
    railcar_boxes: list[tuple[int, int, int, int]]  # per keyframe, as Frame.railcar_box
    truth_pct: float
    grade: str
    # Per keyframe, the mean of MASK_RATERS simulated annotators' masks over the railcar crop
    # (float16, MASK_STEP times coarser than the pixels).
    mask_coverage: list[np.ndarray]


def simulated_masks(
    inclusions: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator
) -> np.ndarray:
    """What MASK_RATERS annotators would mark on one keyframe's railcar crop, averaged: each
    misses MASK_DROP of the inclusion pieces at random and draws its outlines one pixel too
    wide or too narrow half of the time (SAM-assisted masks follow edges, imperfectly)."""
    x0, y0, x1, y1 = crop_box(box, inclusions.shape[1], inclusions.shape[0])
    crop = inclusions[y0:y1, x0:x1]
    pieces, count = ndimage.label(crop)
    total = np.zeros(crop.shape, np.float32)
    for _ in range(MASK_RATERS):
        keep = np.concatenate([[False], rng.random(count) >= MASK_DROP])
        mask = keep[pieces]
        edge = rng.integers(3)
        if edge == 1:
            mask = ndimage.binary_dilation(mask)
        elif edge == 2:
            mask = ndimage.binary_erosion(mask)
        total += mask
    coarse = Image.fromarray(total / MASK_RATERS, mode="F")
    size = (max(1, crop.shape[1] // MASK_STEP), max(1, crop.shape[0] // MASK_STEP))
    return np.asarray(coarse.resize(size, Image.Resampling.BOX), dtype=np.float16)


def render(args: tuple[int, int, int, tuple[int, int]]) -> Railcar:
    """One synthetic railcar's keyframes and its annotators' masks (in a worker process:
    rendering is the slow part). The masks mark inclusions the magnet does not hide."""
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
    rng = np.random.default_rng([DATA_SEED, index, 7])
    coverage = []
    for i in grabbed:
        magnet = np.zeros((height, width, 3), np.uint8)
        centre, radius = unloading._magnet[i]
        scene.draw_magnet(magnet, centre=centre, radius=radius, pivot=unloading._pivot)
        classes = unloading.layer_classes[unloading.surface_layers[i] - 1]
        inclusions = (classes >= SOIL) & ~magnet.any(axis=2)
        coverage.append(simulated_masks(inclusions, unloading.railcar_boxes[i], rng))
    return Railcar(
        [unloading.frame(i) for i in grabbed],
        [tuple(unloading.railcar_boxes[i]) for i in grabbed],
        unloading.contamination_pct,
        unloading.grade,
        coverage,
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


@dataclass
class Inputs:
    """Per railcar: its layers' pooled features, and with masks on, their feature maps and the
    simulated annotators' cell targets (the inclusion head's training data)."""

    pooled: list[np.ndarray]
    maps: list[list[np.ndarray]]
    targets: list[list[np.ndarray]]

    def head(self, labeled: list[int], seed: int) -> InclusionHead | None:
        """The inclusion head fitted on the labeled railcars' masks (mlloop.runs does the same
        with the train split's masks); None with masks off."""
        if not self.maps:
            return None
        return fit_inclusion_head(
            [m.astype(np.float32) for i in labeled for m in self.maps[i]],
            [t for i in labeled for t in self.targets[i]],
            seed=seed,
        )

    def bags_with(self, head: InclusionHead | None) -> list[np.ndarray]:
        if head is None:
            return self.pooled
        return [
            np.concatenate([pooled, np.stack([summary(head, m) for m in maps])], axis=1)
            for pooled, maps in zip(self.pooled, self.maps, strict=True)
        ]


def extract(railcars: list[Railcar], config: ModelConfig, *, masks: bool) -> tuple[Inputs, float]:
    """Each railcar's inputs, and the frames per second the backbone took."""
    extractor = FeatureExtractor(config)
    images = [Image.fromarray(f) for r in railcars for f in r.keyframes]
    boxes = [box for r in railcars for box in r.railcar_boxes]
    extractor.extract(images[: config.feature_batch], boxes[: config.feature_batch])  # warm up
    start = time.perf_counter()
    if masks:
        features, maps = extractor.extract_maps(images, boxes)
    else:
        features, maps = extractor.extract(images, boxes), []
    rate = len(images) / (time.perf_counter() - start)
    inputs, at = Inputs([], [], []), 0
    for railcar in railcars:
        layers = slice(at, at + len(railcar.keyframes))
        inputs.pooled.append(features[layers])
        if masks:
            inputs.maps.append([m.astype(np.float16) for m in maps[layers]])
            inputs.targets.append(
                [
                    cell_targets(cover.astype(np.float32), m.shape[:2])
                    for cover, m in zip(railcar.mask_coverage, maps[layers], strict=True)
                ]
            )
        at += len(railcar.keyframes)
    return inputs, rate


@dataclass
class Timing:
    train_railcar_epochs: int = 0
    train_seconds: float = 0.0
    scored: int = 0
    score_seconds: float = 0.0
    finetune_railcar_epochs: int = 0
    finetune_seconds: float = 0.0

    def add(self, other: "Timing") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


# What the seed jobs read, set in the parent before the worker processes fork (copy-on-write:
# the feature maps are hundreds of megabytes and are never pickled).
_WORLD: tuple = ()


def in_parallel(job, world: tuple, items, args: argparse.Namespace) -> list:
    """job(item, *world) for each item, in --jobs forked processes (the heads train on one
    thread each, so seeds run side by side, one per core), results in the items' order."""
    global _WORLD
    _WORLD = world
    items = list(items)
    if args.jobs <= 1 or len(items) <= 1:
        return [job(item) for item in items]
    with multiprocessing.get_context("fork").Pool(min(args.jobs, len(items))) as workers:
        return workers.map(job, items, chunksize=1)


def _seed_job(seed: int) -> tuple[dict, "Timing"]:
    torch.set_num_threads(1)
    timing = Timing()
    inputs, railcars, labels, args, config = _WORLD
    return run_seed(seed, inputs, railcars, labels, args, config, timing), timing


def _final_job(item: tuple[int, bool]) -> tuple[dict, "Timing"]:
    torch.set_num_threads(1)
    timing = Timing()
    seed, direct = item
    inputs, railcars, labels, args, config = _WORLD
    found = final_random(seed, inputs, railcars, labels, args, config, timing, direct=direct)
    return found, timing


def train(
    bags: list[Bag],
    val: list[Bag],
    config: ModelConfig,
    timing: Timing,
    inclusion: InclusionHead | None = None,
    *,
    least_squares_start: bool = True,
):
    start = time.perf_counter()
    trained = fit(bags, val, config, inclusion=inclusion, least_squares_start=least_squares_start)
    timing.train_seconds += time.perf_counter() - start
    timing.train_railcar_epochs += len(bags) * config.epochs
    return trained


def uncertainties(trained, bags: list[np.ndarray], timing: Timing):
    threshold = float(registered()[STD_THRESHOLD].default)
    start = time.perf_counter()
    predictions = scoring.predict_many(trained, bags)
    u = np.asarray([scoring.railcar_uncertainty(p, std_threshold=threshold) for p in predictions])
    timing.score_seconds += time.perf_counter() - start
    timing.scored += len(bags)
    return predictions, u


def pick_uncertain(trained, bags: list[np.ndarray], k: int, timing: Timing) -> list[int]:
    predictions, u = uncertainties(trained, bags, timing)
    order, _ = diverse_order(u, np.stack([p.embedding for p in predictions]))
    return [int(i) for i in order[:k]]


def error_rank_correlation(trained, test: list[Bag], timing: Timing) -> tuple[float, float]:
    """Spearman of |error| on the test split with the pool's uncertainty, and with the
    expected error (the value shown and the live confidence's input)."""
    predictions, u = uncertainties(trained, [b.features for b in test], timing)
    error = [
        abs(p.contamination_pct - b.contamination) for p, b in zip(predictions, test, strict=True)
    ]
    expected = [p.expected_error_pct for p in predictions]
    return float(spearmanr(u, error).statistic), float(spearmanr(expected, error).statistic)


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
    inputs: Inputs,
    railcars: list[Railcar],
    labels: Labels,
    args: argparse.Namespace,
    config: ModelConfig,
    timing: Timing,
    *,
    strategies: tuple[str, ...] = ("uncertainty", "random"),
    rounds: int | None = None,
) -> dict[str, dict[str, float]]:
    rounds = args.rounds if rounds is None else rounds
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(railcars))
    test_ids = order[: args.test]
    val_ids = order[args.test : args.test + args.val]
    pool_ids = order[args.test + args.val :]
    config = ModelConfig(**{**config.as_dict(), "seed": seed, "grades": tuple(GRADES)})
    seed_set = list(rng.choice(pool_ids, size=args.seed_set, replace=False))
    results = {}
    for strategy in strategies:
        chosen = list(seed_set)
        pick_rng = np.random.default_rng([seed, 1])
        curve = []
        for round_ in range(rounds + 1):
            head = inputs.head(chosen, seed)
            features = inputs.bags_with(head)

            def labeled(i: int, features: list[np.ndarray] = features) -> Bag:
                return Bag(features[i], float(labels.contamination[i]), int(labels.grades[i]))

            test = [
                Bag(features[i], railcars[i].truth_pct, GRADES.index(railcars[i].grade))
                for i in test_ids
            ]
            train_bags = [labeled(i) for i in chosen]
            model = train(train_bags, [labeled(i) for i in val_ids], config, timing, head)
            curve.append(test_metrics(model, test, train_bags))
            if round_ == rounds:
                if strategy == "uncertainty":
                    results["spearman"], results["spearman_expected"] = error_rank_correlation(
                        model, test, timing
                    )
                break
            rest = [i for i in pool_ids if i not in set(chosen)]
            if strategy == "random":
                chosen += list(pick_rng.choice(rest, size=args.per_round, replace=False))
            else:
                picks = pick_uncertain(model, [features[i] for i in rest], args.per_round, timing)
                chosen += [rest[p] for p in picks]
        results[strategy] = curve
    return results


def final_random(
    seed: int,
    inputs: Inputs,
    railcars: list[Railcar],
    labels: Labels,
    args: argparse.Namespace,
    config: ModelConfig,
    timing: Timing,
    *,
    direct: str = "least squares",
) -> dict[str, float]:
    """Test metrics after the whole budget picked at random (the ablation's protocol): the
    same seed set and random picks as the random curve's last round. `direct` "none": the
    inclusion summary reaches the heads through the whitened features only (no direct line);
    "random start": the line trained with the heads from a random start; "least squares": the
    product (training.fit_direct_lines)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(railcars))
    pool_ids = order[args.test + args.val :]
    seed_set = list(rng.choice(pool_ids, size=args.seed_set, replace=False))
    pick_rng = np.random.default_rng([seed, 1])
    chosen = list(seed_set)
    for _ in range(args.rounds):
        rest = [i for i in pool_ids if i not in set(chosen)]
        chosen += list(pick_rng.choice(rest, size=args.per_round, replace=False))
    head = inputs.head(chosen, seed)
    features = inputs.bags_with(head)
    config = ModelConfig(**{**config.as_dict(), "seed": seed, "grades": tuple(GRADES)})

    def bag(i: int, truth: bool = False) -> Bag:
        if truth:
            return Bag(features[i], railcars[i].truth_pct, GRADES.index(railcars[i].grade))
        return Bag(features[i], float(labels.contamination[i]), int(labels.grades[i]))

    train_bags = [bag(i) for i in chosen]
    val = [bag(i) for i in order[args.test : args.test + args.val]]
    model = train(
        train_bags,
        val,
        config,
        timing,
        None if direct == "none" else head,
        least_squares_start=direct == "least squares",
    )
    return test_metrics(model, [bag(i, True) for i in order[: args.test]], train_bags)


def final_finetuned(
    seed: int,
    inputs: Inputs,
    railcars: list[Railcar],
    labels: Labels,
    args: argparse.Namespace,
    config: ModelConfig,
    timing: Timing,
) -> tuple[dict[str, float], dict[str, float]]:
    """As `final_random`, then the product's fine-tuning (mlloop.finetune) of the last
    --finetune-stages stages with the heads; the test split through the tuned backbone."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(railcars))
    pool_ids = order[args.test + args.val :]
    chosen = list(rng.choice(pool_ids, size=args.seed_set, replace=False))
    pick_rng = np.random.default_rng([seed, 1])
    for _ in range(args.rounds):
        rest = [i for i in pool_ids if i not in set(chosen)]
        chosen += list(pick_rng.choice(rest, size=args.per_round, replace=False))
    val_ids, test_ids = order[args.test : args.test + args.val], order[: args.test]
    head = inputs.head(chosen, seed)
    features = inputs.bags_with(head)
    config = ModelConfig(
        **{**config.as_dict(), "seed": seed, "grades": tuple(GRADES),
           "finetune_stages": args.finetune_stages, "finetune_epochs": args.finetune_epochs}
    )  # fmt: skip

    def rated(i: int) -> Bag:
        return Bag(features[i], float(labels.contamination[i]), int(labels.grades[i]))

    train_bags = [rated(i) for i in chosen]
    heads = fit(train_bags, [rated(i) for i in val_ids], config, inclusion=head)
    base = FeatureExtractor(config)

    def images(ids) -> list:
        return [
            (
                [
                    (Image.fromarray(f), b)
                    for f, b in zip(railcars[i].keyframes, railcars[i].railcar_boxes, strict=True)
                ],
                float(labels.contamination[i]),
                int(labels.grades[i]),
            )
            for i in ids
        ]

    truth = [
        Bag(features[i], railcars[i].truth_pct, GRADES.index(railcars[i].grade)) for i in test_ids
    ]
    before = test_metrics(heads, truth, train_bags)
    start = time.perf_counter()
    tuned, _ = finetune(
        heads, base, image_bags(base, images(chosen)), image_bags(base, images(val_ids))
    )
    timing.finetune_seconds += time.perf_counter() - start
    timing.finetune_railcar_epochs += len(chosen) * config.finetune_epochs
    test_features = [features[i] for i in test_ids]
    if tuned is not heads:
        tuned_extractor = FeatureExtractor(tuned.config)
        test_features = []
        for i in test_ids:
            images_i = [Image.fromarray(f) for f in railcars[i].keyframes]
            pooled, maps = tuned_extractor.extract_maps(images_i, railcars[i].railcar_boxes)
            if head is not None:
                pooled = np.concatenate([pooled, np.stack([summary(head, m) for m in maps])], 1)
            test_features.append(pooled)
    test = [
        Bag(f, railcars[i].truth_pct, GRADES.index(railcars[i].grade))
        for f, i in zip(test_features, test_ids, strict=True)
    ]
    return before, test_metrics(tuned, test, train_bags)


def labels_to_reach(curve_n: list[float], curve_mae: list[float], target: float) -> float | None:
    """The label count at which a mean MAE curve first reaches `target` (linear interpolation
    between rounds), None if it never does."""
    if curve_mae[0] <= target:
        return curve_n[0]
    points = list(zip(curve_n, curve_mae, strict=True))
    for (n0, m0), (n1, m1) in zip(points, points[1:], strict=False):
        if m1 <= target:
            return n0 + (n1 - n0) * (m0 - target) / (m0 - m1)
    return None


def print_curve(title: str, curves: dict[str, list[dict[str, float]]]) -> None:
    print(f"\n{title}")
    header = f"{'labeled':>7} | {'strategy':<11} {'MAE':>7} {'R2':>7} {'F1':>6} {'MAE/mean':>8}"
    print(header)
    print("-" * len(header))
    for i in range(len(curves["random"])):
        for name in ("uncertainty", "random"):
            m = curves[name][i]
            print(
                f"{m['n']:7.0f} | {name:<11} {m['mae']:7.3f} {m['r2']:7.3f} {m['f1']:6.3f} "
                f"{m['mae'] / m['mean_mae']:8.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--test", type=int, default=100, help="test railcars (truth labels)")
    parser.add_argument("--val", type=int, default=40, help="validation railcars (rater labels)")
    parser.add_argument("--pool", type=int, default=180, help="unlabeled pool railcars")
    parser.add_argument("--seed-set", type=int, default=20, help="random railcars to start from")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=20, help="railcars labeled per round")
    parser.add_argument("--backbone", default=ModelConfig.backbone)
    parser.add_argument(
        "--weights", default=ModelConfig.pretrained_weights, help="auto, none, a file"
    )
    parser.add_argument("--image-size", type=int, default=160, help="height of the railcar crop")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--ensemble", type=int, default=ModelConfig.ensemble)
    parser.add_argument("--width", type=int, default=640, help="rendered frame width (16:9)")
    parser.add_argument("--layers", type=int, nargs=2, default=(2, 4))
    parser.add_argument(
        "--no-masks", action="store_true", help="pooled features only (no inclusion head)"
    )
    parser.add_argument(
        "--ablation-seeds", type=int, default=3, help="seeds of the ablation table (0: none)"
    )
    parser.add_argument(
        "--finetune-seeds", type=int, default=1, help="seeds of the fine-tuning row (0: none)"
    )
    parser.add_argument("--finetune-stages", type=int, default=1)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="seeds trained side by side"
    )
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    total = args.test + args.val + args.pool
    print(f"Active learning on {total} synthetic railcars; {describe_machine()}")
    print(
        f"torch {torch.__version__}; backbone {args.backbone} (weights: {args.weights}, frozen) at "
        f"{args.image_size} px, {torch.get_num_threads()} threads; heads on 1 thread, "
        f"{args.jobs} seed(s) side by side; "
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
        pretrained_weights=args.weights,
        image_size=args.image_size,
        epochs=args.epochs,
        ensemble=args.ensemble,
        feature_batch=64,
    )
    print(
        f"features: stages {config.stages} of {config.backbone}, weights {weights_digest(config)}"
    )
    inputs, frames_per_s = extract(railcars, config, masks=not args.no_masks)
    print(
        "masks: "
        + (
            "off"
            if args.no_masks
            else f"{MASK_RATERS} simulated annotators per railcar, inclusion head on stage "
            f"{config.dense_stage} maps ({inputs.maps[0][0].shape[0]}x"
            f"{inputs.maps[0][0].shape[1]} cells of {inputs.maps[0][0].shape[2]} channels)"
        )
    )
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
    world = (inputs, railcars, labels, args, config)
    for seed, (results, spent) in enumerate(in_parallel(_seed_job, world, range(args.seeds), args)):
        timing.add(spent)
        print_curve(
            f"seed {seed} (Spearman with |error|: uncertainty {results['spearman']:.2f}, expected "
            f"error {results['spearman_expected']:.2f})",
            results,
        )
        per_seed.append(results)
    mean = {
        name: [
            {k: statistics.fmean(r[name][i][k] for r in per_seed) for k in per_seed[0][name][i]}
            for i in range(args.rounds + 1)
        ]
        for name in ("uncertainty", "random")
    }
    print_curve(f"mean over {args.seeds} seeds", mean)
    n = [m["n"] for m in mean["random"]]
    at_100 = {name: next((m for m in mean[name] if m["n"] == 100), None) for name in mean}
    if at_100["random"] is not None:
        needed = labels_to_reach(
            n, [m["mae"] for m in mean["uncertainty"]], at_100["random"]["mae"]
        )
        print(
            f"\nrandom's MAE at 100 labels: {at_100['random']['mae']:.3f} pp; uncertainty reaches "
            f"it with {'never' if needed is None else f'{needed:.0f}'} labels (mean curves)"
        )
    unc, rnd = mean["uncertainty"][-1], mean["random"][-1]
    print(
        f"after {rnd['n']:.0f} labels: uncertainty MAE {unc['mae']:.3f} "
        f"({unc['mae'] / unc['mean_mae']:.2f}x the mean), R2 {unc['r2']:.3f}; "
        f"random MAE {rnd['mae']:.3f} ({rnd['mae'] / rnd['mean_mae']:.2f}x), R2 {rnd['r2']:.3f}"
    )
    rho = [r["spearman"] for r in per_seed]
    print(
        f"Spearman of the uncertainty with |error| on the test split: mean "
        f"{statistics.fmean(rho):.2f} (min {min(rho):.2f}, max {max(rho):.2f})"
    )
    rho = [r["spearman_expected"] for r in per_seed]
    print(
        f"Spearman of the expected error with |error| on the test split: mean "
        f"{statistics.fmean(rho):.2f} (min {min(rho):.2f}, max {max(rho):.2f})"
    )
    print(
        f"\nthroughput on CPU: features {frames_per_s:.1f} frames/s; head training "
        f"{timing.train_railcar_epochs / timing.train_seconds:.0f} railcar-epochs/s "
        f"({args.ensemble} heads each); "
        f"scoring {timing.scored / timing.score_seconds:.0f} railcars/s (both per process, "
        f"{args.jobs} running at once)"
    )
    if args.ablation_seeds:
        ablation(railcars, labels, inputs, per_seed, args, config, timing)
    print(f"total {time.perf_counter() - start:.0f} s")


def ablation(
    railcars: list[Railcar],
    labels: Labels,
    inputs: Inputs,
    per_seed: list[dict],
    args: argparse.Namespace,
    config: ModelConfig,
    timing: Timing,
) -> None:
    """What each part adds, at the full budget, mean of the first --ablation-seeds seeds."""
    seeds = range(min(args.ablation_seeds, args.seeds))
    budget = args.seed_set + args.rounds * args.per_round
    random_init = ModelConfig(**{**config.as_dict(), "pretrained_weights": "none"})
    plain, _ = extract(railcars, random_init, masks=False)
    rows = [
        ("random-init backbone, pooled stages 0-1, random picks", plain, "none"),
        ("+ ImageNet weights (pooled stages 1-3)", Inputs(inputs.pooled, [], []), "none"),
    ]
    if inputs.maps:
        stage3 = ModelConfig(**{**config.as_dict(), "dense_stages": (3,), "dense_stage": 3})
        before, _ = extract(railcars, stage3, masks=True)
        rows += [
            ("+ the masks, inclusion head on stage 3 (stride 16)", before, "none"),
            ("  head on the hypercolumn of stages 0-2 (stride 8)", inputs, "none"),
            ("+ a direct line from its summary, random start", inputs, "random start"),
            ("  each member starting at its least-squares line (product)", inputs, "least squares"),
        ]
    print(f"\nablation after {budget} labels, mean of {len(seeds)} seeds (test split, truth)")
    print(f"{'configuration':<58} {'MAE':>6} {'R2':>6} {'F1':>6} {'MAE/mean':>8}")
    for name, rows_inputs, direct in rows:
        world = (rows_inputs, railcars, labels, args, config)
        found = []
        for result, spent in in_parallel(_final_job, world, [(s, direct) for s in seeds], args):
            found.append(result)
            timing.add(spent)
        mean = {k: statistics.fmean(f[k] for f in found) for k in found[0]}
        print(
            f"{name:<58} {mean['mae']:6.3f} {mean['r2']:6.3f} {mean['f1']:6.3f} "
            f"{mean['mae'] / mean['mean_mae']:8.2f}"
        )
    chosen = [per_seed[s]["uncertainty"][-1] for s in seeds]
    mean = {k: statistics.fmean(c[k] for c in chosen) for k in chosen[0]}
    print(
        f"{'+ uncertainty and diversity picks (the product)':<58} {mean['mae']:6.3f} "
        f"{mean['r2']:6.3f} {mean['f1']:6.3f} {mean['mae'] / mean['mean_mae']:8.2f}"
    )
    tuned_seeds = range(min(args.finetune_seeds, args.seeds))
    if tuned_seeds:
        pairs = [
            final_finetuned(s, inputs, railcars, labels, args, config, timing) for s in tuned_seeds
        ]
        for name, found in (
            (f"heads only, the same {len(pairs)} seed(s)", [p[0] for p in pairs]),
            (
                f"+ fine-tuning the last {args.finetune_stages} stage(s), "
                f"{args.finetune_epochs} epochs",
                [p[1] for p in pairs],
            ),
        ):
            mean = {k: statistics.fmean(f[k] for f in found) for k in found[0]}
            print(
                f"{name:<58} {mean['mae']:6.3f} {mean['r2']:6.3f} {mean['f1']:6.3f} "
                f"{mean['mae'] / mean['mean_mae']:8.2f}"
            )
        print(
            f"fine-tuning on CPU: {timing.finetune_railcar_epochs / timing.finetune_seconds:.1f} "
            "railcar-epochs/s"
        )


if __name__ == "__main__":
    main()
