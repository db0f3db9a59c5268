"""The per-camera haze baseline (labeling/quality_baseline.py): the airlight model it rests on,
checked on the calibration photographs, and the thresholds it gives a camera. Pure functions, no
database; frames are 960x540 as in test_quality.py."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.quality_baseline import (
    CameraBaseline,
    HistoryRule,
    baseline_from_history,
    camera_thresholds,
    haze_limit,
    veil,
)
from tests.labeling import quality_calibration as calibration
from tests.labeling import quality_calibration_report as calibration_report
from tests.labeling.quality_calibration_report import WITH_BASELINE
from tests.labeling.quality_frames import DEFAULTS, SIZE, photo_frame, results_of

RULE = HistoryRule()


def photo_camera(name: str) -> CameraBaseline:
    """A fixed camera that always sees this photograph: its history is other views of it."""
    views = calibration.history_views(calibration.photo(name), SIZE)
    return calibration.baseline_of((calibration.to_frame_bytes(v, SIZE), None) for v in views)


def haze_of(name: str, alpha: float = 0.0) -> float:
    return results_of(photo_frame(name, calibration.haze(alpha)))["haze"].value


@pytest.mark.parametrize("name", ["coffee", "gravel", "brick", "chelsea"])
def test_the_veil_estimate_recovers_the_airlight_a_frame_was_given(name) -> None:
    h0 = photo_camera(name).haze
    assert abs(veil(haze_of(name), h0, DEFAULTS)) < 0.05
    for alpha in (0.2, 0.4, 0.6, 0.8):
        assert veil(haze_of(name, alpha), h0, DEFAULTS) == pytest.approx(alpha, abs=0.1)


def test_a_camera_that_always_sees_bricks_passes_its_clean_frames_and_flags_a_veil() -> None:
    brick = photo_camera("brick")
    held_to = camera_thresholds(DEFAULTS, brick, RULE)

    # Without its history the evenly lit wall reads as haze (the known false alarm) ...
    assert not results_of(photo_frame("brick"))["haze"].passed
    # ... against its own normal it passes, and a veil over it is still caught.
    assert results_of(photo_frame("brick"), thresholds=held_to)["haze"].passed
    veiled = photo_frame("brick", calibration.haze(0.4))
    assert not results_of(veiled, thresholds=held_to)["haze"].passed


def test_the_baseline_is_the_clear_view_not_a_hazy_stretch() -> None:
    rng = np.random.default_rng(1)
    clear = list(rng.uniform(0.08, 0.12, 70))
    hazy = list(rng.uniform(0.55, 0.65, 30))
    baseline = baseline_from_history(haze=hazy + clear, occupancy=[0.4] * 100, rule=RULE)

    assert baseline.frames == 100 and baseline.haze < 0.12
    held_to = camera_thresholds(DEFAULTS, baseline, RULE)
    assert held_to.max_haze < 0.36
    assert all(h > held_to.max_haze for h in hazy)


def test_only_the_newest_frames_of_the_history_count() -> None:
    rule = HistoryRule(frames=40, min_frames=20, quantile=0.15)
    newest, older = [0.3] * 40, [0.05] * 60
    assert baseline_from_history(haze=newest + older, occupancy=[], rule=rule).haze == 0.3


@pytest.mark.parametrize(
    "baseline",
    [None, CameraBaseline(haze=0.5, occupancy=0.4, frames=19), CameraBaseline(None, None, 0)],
)
def test_a_new_camera_is_held_to_the_absolute_threshold(baseline) -> None:
    assert camera_thresholds(DEFAULTS, baseline, RULE) == DEFAULTS


def test_a_camera_with_a_typical_clear_view_keeps_todays_limit() -> None:
    assert haze_limit(0.1, DEFAULTS) == pytest.approx(DEFAULTS.max_haze, abs=0.005)


def test_a_camera_that_always_reads_veiled_is_not_excused() -> None:
    veiled = CameraBaseline(haze=0.7, occupancy=0.4, frames=500)
    held_to = camera_thresholds(DEFAULTS, veiled, RULE)
    assert held_to.max_haze == pytest.approx(haze_limit(DEFAULTS.max_haze_baseline, DEFAULTS))
    assert held_to.max_haze < 0.7


def test_judging_measured_values_again_without_baselines_changes_no_verdict() -> None:
    outcomes = calibration.evaluate(
        calibration.photo_samples(photos=("moon",), size=SIZE), DEFAULTS
    )
    again = calibration.with_baselines(outcomes, DEFAULTS, {})
    assert [o.failed for o in again] == [o.failed for o in outcomes]


def test_the_calibration_with_camera_baselines_spares_even_surfaces_and_keeps_detection() -> None:
    rows = calibration_report.calibration_report(
        photos=("brick", "moon", "gravel"), synthetic_railcars=1, size=SIZE, baselines=True
    )
    by_key = {(r["set"], r["check"]): r for r in rows}
    absolute, own = by_key["photos", "haze"], by_key["photos" + WITH_BASELINE, "haze"]

    assert absolute["false_alarms"] >= 1  # the lunar plain, at least
    assert own["false_alarms"] == 0
    assert own["detected"] == own["defective"] == absolute["detected"] == 9
    dust = by_key["synthetic" + WITH_BASELINE, "haze"]
    assert dust["detected"] == dust["defective"] > 0 and dust["false_alarms"] == 0
