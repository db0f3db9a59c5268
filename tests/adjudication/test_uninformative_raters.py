"""A calibration a bad rater cannot bend: raters whose ratings carry no information are found,
fitted out of everyone else's calibration, and left out of the calibrated consensus and its
spread; the agreement page flags them."""

from dataclasses import replace

import numpy as np
import pytest

from adjudication.aggregation import RatingInput, compute
from adjudication.calibration import Calibration, calibrated_consensus, fit
from adjudication.policies import AggregationPolicy
from adjudication.uninformative import NEAR_CONSTANT, NOISY, SCALE_AT_FLOOR
from operations.simulation import simulate

CALIBRATED = AggregationPolicy(std_threshold=0.4, std_kind="sample", method="calibrated")
LAZY = 99


def _with_lazy(sim, *, every: int = 3, reading: float = 2.5, seed: int = 7):
    """The simulation's ratings, plus a lazy rater's near-constant rating on every `every`-th
    railcar."""
    rng = np.random.default_rng(seed)
    extra = [
        (i, LAZY, round(float(reading + rng.normal(0, 0.1)), 1))
        for i in range(0, len(sim.truth_pct), every)
    ]
    return sim.observations() + extra, {i for i, _, _ in extra}


def _outcomes(observations, calibrations) -> dict[int, tuple[bool, float]]:
    per_railcar: dict[int, list[RatingInput]] = {}
    for n, (railcar, rater, value) in enumerate(observations):
        per_railcar.setdefault(railcar, []).append(RatingInput(n, rater, value, "3A"))
    results = {i: compute(inputs, CALIBRATED, calibrations) for i, inputs in per_railcar.items()}
    return {i: (r.final, r.value_pct) for i, r in results.items()}


def test_a_lazy_rater_is_found_uninformative():
    sim = simulate(seed=21, railcars=300)
    observations, _ = _with_lazy(sim)

    result = fit(observations)

    lazy = result.calibrations[LAZY]
    assert not lazy.informative
    assert {SCALE_AT_FLOOR, NEAR_CONSTANT} <= set(lazy.flags)
    assert result.flagged == {LAZY: lazy.flags}
    assert all(c.informative for k, c in result.calibrations.items() if k != LAZY)


def test_a_lazy_rater_cannot_change_the_adjudication_of_railcars_it_did_not_rate():
    sim = simulate(seed=22, railcars=300)
    without = fit(sim.observations())
    observations, lazy_rated = _with_lazy(sim)
    with_lazy = fit(observations)

    before = _outcomes(sim.observations(), without.calibrations)
    after = _outcomes(observations, with_lazy.calibrations)
    untouched = [i for i in before if i not in lazy_rated]

    assert len(untouched) == 200
    assert [after[i][0] for i in untouched] == [before[i][0] for i in untouched]
    for i in untouched:
        assert after[i][1] == pytest.approx(before[i][1], abs=1e-9)
    # The other raters' calibrations are the ones they had without the lazy rater.
    for k, c in without.calibrations.items():
        assert with_lazy.calibrations[k].offset == pytest.approx(c.offset, abs=1e-9)
        assert with_lazy.calibrations[k].scale == pytest.approx(c.scale, abs=1e-9)


def test_on_railcars_it_rated_the_lazy_rater_neither_moves_the_value_nor_the_spread():
    good = [Calibration(0.0, 1.0, 0.2), Calibration(0.3, 1.1, 0.2)]
    lazy = Calibration(2.0, 0.25, 0.2, informative=False, flags=(SCALE_AT_FLOOR,))
    values = [6.0, 6.9]

    alone = calibrated_consensus(values, good, ddof=1)
    joined = calibrated_consensus([*values, 2.5], [*good, lazy], ddof=1)

    assert joined == pytest.approx(alone)
    # Counted as before, its corrected reading (2.5 - 2.0) / 0.25 = 2.0 would blow the spread.
    counted = calibrated_consensus([*values, 2.5], [*good, replace(lazy, informative=True)], ddof=1)
    assert counted[1] > 1.0 > joined[1]


def test_with_fewer_than_two_informative_readings_everyone_counts():
    lazy = Calibration(2.0, 0.25, 0.2, informative=False, flags=(SCALE_AT_FLOOR,))
    value, spread = calibrated_consensus([6.0, 2.5], [Calibration(), lazy], ddof=1)
    assert spread > 0.4  # not a one-rater consensus that nobody disagrees with


def test_a_rater_far_noisier_than_the_panel_is_found():
    rng = np.random.default_rng(3)
    truth = rng.uniform(1.0, 10.0, 120)
    observations = [
        (i, r, round(float(np.clip(t + rng.normal(0, 0.2), 0, 100)), 1))
        for i, t in enumerate(truth) for r in (1, 2, 3)
    ]  # fmt: skip
    observations += [
        (i, 4, round(float(np.clip(t + rng.normal(0, 3.0), 0, 100)), 1))
        for i, t in enumerate(truth)
    ]
    result = fit(observations)

    assert NOISY in result.calibrations[4].flags
    assert all(result.calibrations[k].informative for k in (1, 2, 3))


def test_an_ordinary_panel_flags_nobody():
    for seed in range(1, 6):
        assert fit(simulate(seed=seed, railcars=300).observations()).flagged == {}


# --- stored, and flagged on the agreement page ---------------------------------------------------


@pytest.mark.django_db
def test_a_lazy_rater_is_stored_uninformative_and_flagged_on_the_agreement_page(
    senior, django_capture_on_commit_callbacks
):
    from adjudication import calibration
    from scrapannot.models import AuditEvent
    from tests.adjudication.factories import rated_railcar
    from tests.conftest import client_for
    from tests.labeling.factories import annotators

    raters = annotators(3, prefix="good") + annotators(1, prefix="lazy")
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(12):
            truth = 2.0 + i
            values = [truth, truth + 0.3, round(truth * 1.1, 1), 5.0]
            rated_railcar(values, ["3A"] * 4, raters=raters)

    rows = calibration.estimate_and_store(actor=None)

    stored = {row.annotator_id: row for row in rows}
    lazy = stored[raters[3].pk]
    assert not lazy.informative and "near_constant" in lazy.flags
    assert all(stored[r.pk].informative for r in raters[:3])
    event = AuditEvent.objects.filter(action="calibration.estimated").latest("id")
    assert list(event.payload["uninformative"]) == [str(raters[3].pk)]
    assert calibration.estimate_and_store(actor=None)[-1].pk == lazy.pk  # unchanged: no new row

    page = client_for(senior).get("/adjudication/agreement/").content.decode()
    row = next(line for line in page.split("<tr>") if "lazy0" in line)
    assert "uninformative: " in row and "near-constant answers" in row
    assert not any("uninformative: " in line for line in page.split("<tr>") if "good" in line)
