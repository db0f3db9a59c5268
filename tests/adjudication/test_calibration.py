"""Rater calibration: the estimator on simulated raters, its edge cases, storing it, using it."""

import io
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from adjudication import aggregation, calibration
from adjudication.aggregation import RatingInput, compute
from adjudication.calibration import MIN_ANCHORS, MIN_RATINGS, MIN_SCALE, fit
from adjudication.models import AdjudicationCase, Consensus, FinalLabel, RaterCalibration
from adjudication.policies import METHOD, AggregationPolicy
from adjudication.tasks import estimate_calibrations
from labeling.models import Railcar
from operations.simulation import RaterPanel, SimRater, simulate
from operations.synth_scrap import GRADES
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.adjudication.factories import rated_railcar
from tests.celery_worker import wait_for
from tests.concurrency import run_at_once
from tests.labeling.factories import annotators

MEAN = AggregationPolicy(std_threshold=0.4, std_kind="sample", method="mean")
CALIBRATED = AggregationPolicy(std_threshold=0.4, std_kind="sample", method="calibrated")


def normalized_truth(panel: RaterPanel, result: calibration.Fit) -> dict[str, np.ndarray]:
    """The true parameters put on the estimator's scale: count-weighted mean offset 0, scale 1."""
    raters = sorted(result.calibrations)
    counts = np.array([result.n_ratings[k] for k in raters], dtype=float)
    offset = np.array([panel.raters[k].offset for k in raters])
    scale = np.array([panel.raters[k].scale for k in raters])
    shift, stretch = np.average(offset, weights=counts), np.average(scale, weights=counts)
    return {"offset": offset - scale * shift / stretch, "scale": scale / stretch}


def estimated(result: calibration.Fit, field: str) -> np.ndarray:
    return np.array([getattr(result.calibrations[k], field) for k in sorted(result.calibrations)])


# The estimator, free of the database


def test_the_estimator_recovers_known_offsets_and_scales():
    sim = simulate(seed=11)
    result = fit(sim.observations())
    true = normalized_truth(sim.panel, result)

    assert result.converged and len(result.calibrations) == 12
    offset_error = np.abs(estimated(result, "offset") - true["offset"]).mean()
    scale_error = np.abs(estimated(result, "scale") - true["scale"]).mean()
    # Reading every rater as is (offset 0, scale 1) would miss by several times as much.
    assert offset_error < 0.15 and offset_error < np.abs(true["offset"]).mean() / 2
    assert scale_error < 0.04 and scale_error < np.abs(true["scale"] - 1).mean() / 3
    assert np.corrcoef(estimated(result, "offset"), true["offset"])[0, 1] > 0.9
    assert np.corrcoef(estimated(result, "scale"), true["scale"])[0, 1] > 0.9
    noise = np.array([sim.panel.raters[k].noise_sd for k in sorted(result.calibrations)])
    assert np.abs(estimated(result, "noise_sd") - noise).mean() < 0.1


def test_the_calibrated_consensus_is_closer_to_the_truth_and_adjudicates_less():
    sim = simulate(seed=12)
    result = fit(sim.observations())
    per_railcar: list[list[RatingInput]] = [[] for _ in sim.truth_pct]
    for n, r in enumerate(sim.ratings):
        per_railcar[r.railcar].append(RatingInput(n, r.rater, r.contamination_pct, r.grade))
    plain = [compute(inputs, MEAN) for inputs in per_railcar]
    calibrated = [compute(inputs, CALIBRATED, result.calibrations) for inputs in per_railcar]
    # Without expert anchors the consensus reads on the average rater's scale: what calibration
    # removes is each rater's own deviation from it, not the panel's shared bias.
    raters = sorted(result.calibrations)
    counts = np.array([result.n_ratings[k] for k in raters], dtype=float)
    offsets = np.array([sim.panel.raters[k].offset for k in raters])
    scales = np.array([sim.panel.raters[k].scale for k in raters])
    average_rater = np.average(offsets, weights=counts) + np.average(
        scales, weights=counts
    ) * np.asarray(sim.truth_pct)

    def mae(results, target):
        return np.mean(np.abs(np.array([r.value_pct for r in results]) - target))

    assert all(r.method == "calibrated" for r in calibrated)
    assert mae(calibrated, average_rater) < 0.6 * mae(plain, average_rater)
    assert mae(calibrated, sim.truth_pct) < mae(plain, sim.truth_pct)
    assert sum(not r.final for r in calibrated) < 0.7 * sum(not r.final for r in plain)


def test_no_ratings_and_a_single_rater_give_no_calibration():
    assert calibration.estimate([]) == {}
    # One rater alone: every railcar rated once says nothing about that rater.
    assert calibration.estimate([(i, 7, float(i)) for i in range(50)]) == {}


def test_railcars_rated_once_are_left_out_of_the_fit():
    sim = simulate(seed=13, railcars=200)
    base = fit(sim.observations())
    lonely = [(10_000 + i, i % 12, 99.0 - i) for i in range(40)]
    with_lonely = fit(sim.observations() + lonely)

    assert with_lonely.calibrations == base.calibrations
    assert with_lonely.ratings == base.ratings


def test_raters_with_one_or_two_ratings_get_none_and_stay_near_identity():
    sim = simulate(seed=14, railcars=200)
    # Two newcomers each join two railcars of the simulation, reading 3 points high.
    newcomers = [(0, 100, sim.truth_pct[0] + 3), (1, 100, sim.truth_pct[1] + 3)]
    newcomers += [(2, 101, sim.truth_pct[2] + 3)]
    observations = sim.observations() + [(c, r, round(float(v), 1)) for c, r, v in newcomers]

    result = fit(observations)
    assert 100 not in result.calibrations and 101 not in result.calibrations
    assert len(result.calibrations) == 12

    shrunk = fit(observations, min_ratings=1)
    # The prior (offset sd 0.5) holds two ratings 3 points high well short of 3.
    assert 0 < shrunk.calibrations[100].offset < 2.0
    assert abs(shrunk.calibrations[101].scale - 1) < 0.5


def test_constant_ratings_give_finite_estimates_at_the_floors():
    everyone_says_five = [(c, r, 5.0) for c in range(30) for r in range(3)]
    result = fit(everyone_says_five)

    for c in result.calibrations.values():
        assert np.isfinite([c.offset, c.scale, c.noise_sd]).all()
        assert c.noise_sd >= calibration.MIN_NOISE_SD
        assert c.offset == pytest.approx(0.0, abs=1e-6)
        assert c.scale == pytest.approx(1.0, abs=1e-6)


def test_a_rater_who_always_says_the_same_gets_the_scale_floor():
    rng = np.random.default_rng(5)
    truth = rng.uniform(0.5, 10.0, 60)
    observations = [(i, r, round(float(t + rng.normal(0, 0.1)), 1)) for i, t in enumerate(truth)
                    for r in (1, 2)]  # fmt: skip
    observations += [(i, 3, 4.0) for i in range(60)]
    result = fit(observations)

    stuck = result.calibrations[3]
    assert stuck.scale == pytest.approx(MIN_SCALE, abs=0.01)
    assert np.isfinite(stuck.correct(4.0)) and np.isfinite(stuck.weight)
    # Found uninformative and fitted again without: the others keep their own scale, where the
    # stuck rater used to pull it flat (and the others' scales up to carry it).
    assert not stuck.informative and "scale_at_floor" in stuck.flags
    assert result.calibrations[1].scale == pytest.approx(1.0, abs=0.05)
    assert result.calibrations[1].informative


def test_all_zero_ratings_of_clean_railcars_are_fine():
    result = fit([(c, r, 0.0) for c in range(20) for r in range(4)])
    assert all(
        np.isfinite([c.offset, c.scale, c.noise_sd]).all() for c in result.calibrations.values()
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1, 100.1, "abc", None])
def test_corrupt_values_are_refused_with_a_clear_error(bad):
    observations = [(c, r, 5.0) for c in range(10) for r in range(3)] + [(99, 1, bad)]
    with pytest.raises((ValueError, TypeError)):
        fit(observations)


def test_enough_expert_decisions_set_the_scale_few_do_not():
    # Every rater reads 1 point high: on the average rater's scale that is invisible.
    raters = tuple(SimRater(1.0, s, 0.2, 0.0, 1.0, True) for s in (0.9, 1.0, 1.1, 1.0))
    panel = RaterPanel(raters)
    rng = np.random.default_rng(3)
    truth = rng.gamma(1.6, 1.7, 300)
    observations = [
        (i, k, panel.rate(float(t), "3A", k, rng)[0])
        for i, t in enumerate(truth)
        for k in rng.choice(4, 3, replace=False)
    ]
    plain = fit(observations)
    assert np.abs(estimated(plain, "offset")).max() < 0.3

    experts = {i: round(float(truth[i]), 1) for i in range(40)}
    anchored = fit(observations, anchors=experts)
    assert anchored.anchors == 40
    assert estimated(anchored, "offset") == pytest.approx([1.0] * 4, abs=0.2)
    assert estimated(anchored, "scale") == pytest.approx([0.9, 1.0, 1.1, 1.0], abs=0.05)

    too_few = fit(observations, anchors=dict(list(experts.items())[: MIN_ANCHORS - 1]))
    assert too_few.anchors == 0
    assert too_few.calibrations == plain.calibrations


def test_the_simulation_is_deterministic_per_seed_and_reads_like_the_form():
    a, b, c = simulate(seed=4, railcars=50), simulate(seed=4, railcars=50), simulate(seed=5)
    assert a.ratings == b.ratings and np.array_equal(a.truth_pct, b.truth_pct)
    assert a.ratings != c.ratings[: len(a.ratings)]
    for r in a.ratings:
        assert 0.0 <= r.contamination_pct <= 100.0
        assert round(r.contamination_pct, 1) == r.contamination_pct
        assert r.grade in GRADES
    by_railcar = {}
    for r in a.ratings:
        by_railcar.setdefault(r.railcar, []).append(r.rater)
    assert all(len(set(raters)) == 3 for raters in by_railcar.values())
    stable = [r for r in a.panel.raters if r.stable]
    assert len(stable) == 6 and all(abs(r.offset) <= 0.5 for r in stable)


# Storing and using it


TRUTH = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 2.5]


def readings(truth: float) -> list[str]:
    """Three raters: one reads true, one a point high, one on a 1.5x wider scale."""
    return [f"{truth:.1f}", f"{truth + 1:.1f}", f"{1.5 * truth:.1f}"]


def rated_panel(prefix: str = "cal"):
    users = annotators(3, prefix=prefix)
    for truth in TRUTH:
        rated_railcar(readings(truth), ["3A"] * 3, raters=users)
    return users


@pytest.mark.django_db(transaction=True)
def test_estimate_and_store_writes_one_row_per_rater_and_one_audit_event(admin_user):
    users = rated_panel()
    assert len(TRUTH) >= MIN_RATINGS

    rows = calibration.estimate_and_store(actor=admin_user)

    assert [row.annotator_id for row in rows] == [u.pk for u in users]
    assert RaterCalibration.objects.count() == 3
    assert all(row.n_ratings == len(TRUTH) for row in rows)
    plain, high, wide = rows
    # With 9 ratings each, the prior still holds the offsets back by a few tenths.
    assert high.offset - plain.offset == pytest.approx(1.0, abs=0.25)
    assert wide.scale / plain.scale == pytest.approx(1.5, abs=0.1)
    event = AuditEvent.objects.get(action="calibration.estimated")
    assert event.actor == admin_user
    assert event.payload["written"] == [row.pk for row in rows]
    assert event.payload["ratings"] == 3 * len(TRUTH) and event.payload["anchors"] == 0

    # Nothing changed: no new rows, so consensus fingerprints stay valid; the run is still logged.
    again = calibration.estimate_and_store()
    assert [row.pk for row in again] == [row.pk for row in rows]
    assert RaterCalibration.objects.count() == 3
    assert AuditEvent.objects.filter(action="calibration.estimated").count() == 2
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_the_calibrated_method_turns_a_split_railcar_final_and_names_its_calibrations(
    admin_user,
):
    users = rated_panel()
    rows = calibration.estimate_and_store()
    ids = {str(row.annotator_id): row.pk for row in rows}

    # Under the plain mean these readings spread far beyond 0.4 ...
    split, _ = rated_railcar(readings(4.6), ["3A"] * 3, raters=users)
    assert split.status == Railcar.Status.IN_ADJUDICATION
    consensus = Consensus.objects.get(railcar=split)
    assert consensus.method == "mean" and consensus.std_pct > 1.0
    # Every rater rated every railcar, so the average rater's scale is the mean's.
    assert consensus.calibrated_pct == pytest.approx(consensus.mean_pct, abs=0.2)
    assert consensus.calibrated_std_pct < 0.4

    # ... and once an admin switches the method, the same kind of readings agree.
    set_policy(key=METHOD, value="calibrated", actor=admin_user)
    agreed, _ = rated_railcar(readings(5.4), ["3A"] * 3, raters=users)
    assert agreed.status == Railcar.Status.LABELED
    label = FinalLabel.objects.get(railcar=agreed)
    assert label.method == "calibrated"
    assert {k: v["id"] for k, v in label.provenance["calibrations"].items()} == ids
    assert label.provenance["policy"]["method"] == "calibrated"
    mean = Consensus.objects.get(railcar=agreed).mean_pct
    assert float(label.contamination_pct) == pytest.approx(mean, abs=0.2)

    # Re-applying the policy settles the earlier split railcar too.
    aggregation.reapply(actor=admin_user)
    split.refresh_from_db()
    assert split.status == Railcar.Status.LABELED
    assert FinalLabel.objects.get(railcar=split).method == "calibrated"
    assert AdjudicationCase.objects.get(railcar=split).status == "withdrawn"

    # Back to the mean: the calibrated value is still computed beside it, but not used.
    set_policy(key=METHOD, value="mean", actor=admin_user)
    later, _ = rated_railcar(readings(3.3), ["3A"] * 3, raters=users)
    assert later.status == Railcar.Status.IN_ADJUDICATION
    assert Consensus.objects.get(railcar=later).calibrated_pct is not None
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_adjudicated_labels_anchor_the_fit_once_there_are_enough():
    users = rated_panel()
    extra = [1.5, 3.5, 5.5]
    for truth in extra:
        rated_railcar(readings(truth), ["3A"] * 3, raters=users)
    railcars = list(Railcar.objects.order_by("id"))
    assert all(r.status == Railcar.Status.IN_ADJUDICATION for r in railcars)
    # A senior inspector's decisions: the truth of MIN_ANCHORS railcars.
    for railcar, truth in list(zip(railcars, TRUTH + extra, strict=True))[:MIN_ANCHORS]:
        FinalLabel.objects.create(
            railcar=railcar, contamination_pct=Decimal(str(truth)), grade="3A",
            source=FinalLabel.Source.ADJUDICATION, method="adjudication", std_pct=0.0,
            provenance={}, decided_at=timezone.now(),
        )  # fmt: skip

    rows = calibration.estimate_and_store()

    assert AuditEvent.objects.get(action="calibration.estimated").payload["anchors"] == MIN_ANCHORS
    plain, high, wide = rows
    # On the experts' scale the first rater reads true, the second a point high.
    assert plain.offset == pytest.approx(0.0, abs=0.2)
    assert plain.scale == pytest.approx(1.0, abs=0.05)
    assert high.offset == pytest.approx(1.0, abs=0.2)
    assert wide.scale == pytest.approx(1.5, abs=0.08)


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_store_each_estimate_once(on_postgresql):
    rated_panel()

    results = run_at_once(calibration.estimate_and_store, threads=4)

    assert all(len(rows) == 3 for rows in results)
    assert RaterCalibration.objects.count() == 3
    events = AuditEvent.objects.filter(action="calibration.estimated")
    assert events.count() == 4
    assert sum(len(e.payload["written"]) for e in events) == 3
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_the_command_prints_the_table_and_says_when_there_is_nothing():
    out = io.StringIO()
    call_command("calibrate_raters", stdout=out)
    assert "nothing estimated" in out.getvalue()
    assert not RaterCalibration.objects.exists()

    rated_panel(prefix="cmd")
    out = io.StringIO()
    call_command("calibrate_raters", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:5] == ["rater", "ratings", "offset", "scale", "noise"]
    assert [line.split()[0] for line in lines[1:]] == ["cmd0", "cmd1", "cmd2"]
    assert all(line.split()[1] == str(len(TRUTH)) for line in lines[1:])
    event = AuditEvent.objects.filter(action="calibration.estimated").last()
    assert event.actor_label == "command:calibrate_raters"


def test_the_scheduled_task_estimates_in_a_worker(on_postgresql, celery_worker):
    rated_panel(prefix="wk")
    celery_worker.start(queues="celery")

    estimate_calibrations.delay()

    wait_for(lambda: RaterCalibration.objects.count() == 3, what="the worker to calibrate")
    assert AuditEvent.objects.filter(action="calibration.estimated").count() == 1


def test_ratings_cut_off_at_zero_do_not_flatten_a_raters_line():
    # Rater 1 reads 1 point low and 30 % wide: every railcar below 0.77 % reads 0.0 on the form.
    rng = np.random.default_rng(8)
    truth = np.clip(rng.gamma(1.6, 1.7, 800), 0, 15)
    observations = []
    for i, t in enumerate(truth):
        for rater, (offset, scale) in {1: (-1.0, 1.3), 2: (0.0, 1.0), 3: (0.2, 0.9)}.items():
            reading = offset + scale * t + rng.normal(0, 0.3)
            observations.append((i, rater, round(float(np.clip(reading, 0, 100)), 1)))
    assert sum(v == 0.0 for _, r, v in observations if r == 1) > 100
    experts = {i: round(float(truth[i]), 1) for i in range(80)}

    result = fit(observations, anchors=experts)

    low = result.calibrations[1]
    assert low.offset == pytest.approx(-1.0, abs=0.1)
    assert low.scale == pytest.approx(1.3, abs=0.05)
