"""Aggregation and agreement statistics over 2,000 railcars with 3 ratings each.

Synthetic raters read contamination as offset + scale * truth + noise (seed 000: inspectors
differ in offset and width of scale) and pick a grade that is sometimes off by one class.
In one run, each round measures:

- the baseline: NumPy means and sample STDs of the 2000x3 array, vectorised (one call each);
- (a) `adjudication.aggregation.compute` railcar by railcar (the product's rule, pure), and its
  parts: `np.mean` + `np.std` on each railcar's 3 values, and the grade vote;
- (b) the agreement statistics (`adjudication.agreement_report.summarize`: alpha, kappa, confusion
  matrices, per-rater figures, weekly buckets) on the same data in memory, with alpha and kappa
  over all railcars timed alone;
- (c) the database path: the same railcars, ratings, final labels and cases written to the bench
  database in bulk once (line AGREE-BENCH), then `agreement_report.load` and `agreement_report`.

Figures are medians over rounds, per railcar, with ratios to the baseline. Run with
`bin/bench aggregation` (`--rounds N`, `--railcars N`).
"""

# ruff: noqa: E402 -- Django must be set up before the models are imported.

import argparse
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import krippendorff
import numpy as np

from tests.benchmarks.common import Measurement, describe_machine, print_table, setup_django

setup_django()

from django.contrib.auth.models import Group, User
from django.db import transaction

from adjudication import agreement_report, agreement_statistics
from adjudication.aggregation import RatingInput, compute, majority, one_decimal
from adjudication.models import AdjudicationCase, FinalLabel
from adjudication.policies import AggregationPolicy
from labeling.annotation_models import Grade
from labeling.models import Assignment, Railcar, Rating
from scrapannot.roles import Role

LINE = "AGREE-BENCH"  # the benchmark's railcars; nothing else in the bench database is touched
RATERS_PER_RAILCAR, PEOPLE, WEEKS = 3, 12, 20
POLICY = AggregationPolicy(std_threshold=0.4, std_kind="sample", method="mean")
GRADES = list(Grade.values)
REFERENCE_RAILCARS = 500
START = datetime(2026, 1, 5, 8, tzinfo=UTC)


@dataclass
class World:
    values: np.ndarray  # railcars x raters, one decimal
    grades: list[list[str]]
    raters: np.ndarray  # railcars x raters: index of the person
    seconds: np.ndarray
    submitted: list[datetime]  # per railcar: when its ratings came in


def synthesize(railcars: int, *, seed: int = 0) -> World:
    rng = np.random.default_rng(seed)
    offset = rng.normal(0.0, 0.2, PEOPLE)
    scale = rng.uniform(0.9, 1.1, PEOPLE)
    truth = rng.gamma(2.0, 2.5, railcars)
    raters = np.array([rng.choice(PEOPLE, RATERS_PER_RAILCAR, replace=False) for _ in truth])
    noise = rng.normal(0.0, 0.15, raters.shape)
    values = np.clip(np.round(offset[raters] + scale[raters] * truth[:, None] + noise, 1), 0, 100)
    grade_index = np.clip(np.digitize(truth, [3.0, 6.0, 10.0])[:, None] + rng.choice(
        [-1, 0, 0, 0, 0, 0, 1], raters.shape), 0, len(GRADES) - 1)  # fmt: skip
    grades = [[GRADES[g] for g in row] for row in grade_index]
    seconds = rng.integers(30, 400, raters.shape)
    submitted = [START + timedelta(minutes=int(m)) for m in rng.integers(0, WEEKS * 7 * 24 * 60,
                                                                          railcars)]  # fmt: skip
    return World(values, grades, raters, seconds, submitted)


def rating_inputs(world: World) -> list[list[RatingInput]]:
    return [
        [
            RatingInput(i * RATERS_PER_RAILCAR + j, int(world.raters[i, j]), float(v), g)
            for j, (v, g) in enumerate(zip(world.values[i], world.grades[i], strict=True))
        ]
        for i in range(len(world.values))
    ]


def agreement_data(world: World, inputs: list[list[RatingInput]]) -> agreement_report.AgreementData:
    """What `agreement.load` would return for this world, with labels from `compute`."""
    ratings, finals, adjudicated = [], {}, set()
    for i, railcar in enumerate(inputs):
        for j, r in enumerate(railcar):
            ratings.append(
                agreement_report.RatingRow(i, f"rater-{r.annotator_id:02d}", r.contamination_pct,
                                    r.grade, int(world.seconds[i, j]), world.submitted[i])
            )  # fmt: skip
        result = compute(railcar, POLICY)
        if result.final:
            finals[i] = agreement_report.FinalRow(
                float(one_decimal(result.value_pct)), result.majority_grade
            )
        else:
            adjudicated.add(i)
    return agreement_report.AgreementData(ratings, finals, adjudicated, calibrations={})


# --- the database ------------------------------------------------------------------------------


def drop_rows() -> None:
    railcars = Railcar.objects.filter(line=LINE)
    with transaction.atomic():
        FinalLabel.objects.filter(railcar__in=railcars).delete()
        AdjudicationCase.objects.filter(railcar__in=railcars).delete()
        Rating.objects.filter(railcar__in=railcars).delete()
        Assignment.objects.filter(railcar__in=railcars).delete()
        railcars.delete()


def ensure_rows(world: World, inputs: list[list[RatingInput]]) -> None:
    """Write the world once: railcars, assignments, ratings, final labels, cases (in bulk). The
    camera name carries a digest of the world, so a changed world replaces the stored one."""
    camera = f"{LINE}-{hashlib.sha256(world.values.tobytes()).hexdigest()[:16]}"
    stored = Railcar.objects.filter(line=LINE)
    if stored.count() == len(inputs) and not stored.exclude(camera=camera).exists():
        return
    drop_rows()
    group = Group.objects.get_or_create(name=Role.ANNOTATOR.value)[0]
    people = []
    for p in range(PEOPLE):
        user, _ = User.objects.get_or_create(username=f"agree-bench-rater-{p:02d}")
        user.groups.add(group)
        people.append(user)
    with transaction.atomic():
        cars = Railcar.objects.bulk_create(
            Railcar(real_id=f"AGREE-{i:06d}", line=LINE, camera=camera,
                    fingerprint=hashlib.sha256(f"agree bench {i}".encode()).hexdigest(),
                    unloading_started_at=world.submitted[i] - timedelta(hours=1),
                    unloading_ended_at=world.submitted[i] - timedelta(minutes=50),
                    layer_source="manifest", status=Railcar.Status.LABELED,
                    raters_needed=RATERS_PER_RAILCAR, open_slots=0)
            for i in range(len(inputs))
        )  # fmt: skip
        assignments = Assignment.objects.bulk_create(
            Assignment(pseudonym=f"agree-{i:06d}-{j}", railcar=car,
                       annotator=people[r.annotator_id], slot=j + 1,
                       status=Assignment.Status.SUBMITTED, leased_at=world.submitted[i],
                       lease_expires_at=world.submitted[i], finished_at=world.submitted[i])
            for i, (car, railcar) in enumerate(zip(cars, inputs, strict=True))
            for j, r in enumerate(railcar)
        )  # fmt: skip
        Rating.objects.bulk_create(
            Rating(assignment=a, railcar=a.railcar, annotator=a.annotator,
                   contamination_pct=Decimal(str(r.contamination_pct)), grade=r.grade,
                   seconds_spent=int(world.seconds[i, j]), submitted_at=world.submitted[i])
            for a, (i, j, r) in zip(assignments, (
                (i, j, r) for i, railcar in enumerate(inputs) for j, r in enumerate(railcar)
            ), strict=True)
        )  # fmt: skip
        labels, cases = [], []
        for i, (car, railcar) in enumerate(zip(cars, inputs, strict=True)):
            result = compute(railcar, POLICY)
            if result.final:
                labels.append(
                    FinalLabel(railcar=car, contamination_pct=one_decimal(result.value_pct),
                               grade=result.majority_grade, source=FinalLabel.Source.CONSENSUS,
                               method=result.method, std_pct=result.std_pct,
                               provenance={"bench": True}, decided_at=world.submitted[i])
                )  # fmt: skip
            else:
                cases.append(
                    AdjudicationCase(railcar=car, reasons=result.reasons, disagreement=1.0,
                                     opened_at=world.submitted[i])
                )  # fmt: skip
        FinalLabel.objects.bulk_create(labels)
        AdjudicationCase.objects.bulk_create(cases)
    print(
        f"wrote {len(cars)} railcars, {len(cars) * RATERS_PER_RAILCAR} ratings, "
        f"{len(labels)} final labels, {len(cases)} open cases to the bench database"
    )


# --- the run -----------------------------------------------------------------------------------


def measure(
    steps: dict[str, Callable[[], object]], items: int, rounds: int
) -> dict[str, Measurement]:
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for fn in steps.values():
        fn()  # warm up: imports (statsmodels), caches, the connection
    for r in range(rounds):
        # Alternate the order so that drift on a noisy machine does not favour one step.
        order = list(steps.items()) if r % 2 == 0 else list(reversed(steps.items()))
        for name, fn in order:
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    return {name: Measurement(name, items, s) for name, s in seconds.items()}


def reference_alpha(values: list[list[float]], rounds: int) -> None:
    """The `krippendorff` package on fewer railcars: its units x values x values array takes
    about 2 GB at 2,000 railcars."""
    data = np.array(values).T
    closed = agreement_statistics.interval_alpha(values)
    package = krippendorff.alpha(reliability_data=data, level_of_measurement="interval")
    results = measure(
        {
            "closed form (agreement.interval_alpha)": lambda: agreement_statistics.interval_alpha(
                values
            ),
            "krippendorff.alpha": lambda: krippendorff.alpha(
                reliability_data=data, level_of_measurement="interval"
            ),
        },
        len(values),
        min(rounds, 3),
    )
    print_table(
        f"alpha over {len(values)} railcars ({len(np.unique(data))} distinct values)",
        list(results.values()),
        baseline=results["closed form (agreement.interval_alpha)"],
        unit="railcar",
    )
    print(f"alpha: closed form {closed:.12f}, krippendorff package {package:.12f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--railcars", type=int, default=2000)
    parser.add_argument("--no-db", action="store_true", help="skip the database-backed variant")
    args = parser.parse_args()

    world = synthesize(args.railcars)
    inputs = rating_inputs(world)
    data = agreement_data(world, inputs)
    per_railcar_values = [list(map(float, row)) for row in world.values]
    categories = agreement_statistics.categories_of(GRADES)

    baseline_name = f"baseline: NumPy mean + STD, {args.railcars}x3 at once"

    def numpy_mean_std() -> None:
        world.values.mean(axis=1)
        world.values.std(axis=1, ddof=1)

    steps: dict[str, Callable[[], object]] = {
        baseline_name: numpy_mean_std,
        "(a) aggregation.compute per railcar": lambda: [compute(r, POLICY) for r in inputs],
        "(a) part: np.mean + np.std per railcar": lambda: [
            (np.mean(v), np.std(v, ddof=1)) for v in per_railcar_values
        ],
        "(a) part: grade vote per railcar": lambda: [majority(g) for g in world.grades],
        "(b) agreement.summarize (all statistics)": lambda: agreement_report.summarize(data),
        "(b) part: alpha over all railcars": lambda: agreement_statistics.interval_alpha(
            per_railcar_values
        ),
        "(b) part: kappa over all railcars": lambda: agreement_statistics.fleiss_kappa(
            world.grades, categories
        ),
    }
    if not args.no_db:
        ensure_rows(world, inputs)
        steps["(c) agreement.load (4 queries)"] = lambda: agreement_report.load(line=LINE)
        steps["(c) agreement_report (load + statistics)"] = lambda: (
            agreement_report.agreement_report(line=LINE)
        )

    print(
        f"Aggregation and agreement over {args.railcars} railcars x {RATERS_PER_RAILCAR} "
        f"ratings, {PEOPLE} raters; {describe_machine()}; {args.rounds} rounds"
    )
    results = measure(steps, args.railcars, args.rounds)
    baseline = results[baseline_name]
    print_table("per railcar", list(results.values()), baseline=baseline, unit="railcar")

    reference_alpha(per_railcar_values[:REFERENCE_RAILCARS], args.rounds)
    report = agreement_report.summarize(data)
    print(
        f"\nstatistics: alpha {report.alpha:.3f}, kappa {report.kappa.value:.3f} over "
        f"{report.kappa.railcars} railcars, {len(report.buckets)} {report.period}s, "
        f"{len(data.finals)} final by consensus, {len(data.adjudicated)} to adjudication"
    )
    compute_all = results["(a) aggregation.compute per railcar"]
    numpy_part = results["(a) part: np.mean + np.std per railcar"]
    print(
        f"(a) compute: {compute_all.median * 1e3:.1f} ms for {args.railcars} railcars, "
        f"{compute_all.median / baseline.median:.0f}x the vectorised baseline; "
        f"np.mean + np.std on 3-value lists take {numpy_part.median / compute_all.median:.0%} "
        f"of it"
    )
    if not args.no_db:
        full = results["(c) agreement_report (load + statistics)"]
        load = results["(c) agreement.load (4 queries)"]
        print(
            f"(c) the page's figures from the database: {full.median * 1e3:.0f} ms, of which "
            f"load {load.median * 1e3:.0f} ms"
        )


if __name__ == "__main__":
    main()
