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
    occupancy_limit,
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
    held_to = camera_thresholds(DEFAULTS, brick, RULE, boxed=False)

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
    held_to = camera_thresholds(DEFAULTS, baseline, RULE, boxed=False)
    assert held_to.max_haze < 0.36
    assert all(h > held_to.max_haze for h in hazy)


def test_only_the_newest_frames_of_the_history_count() -> None:
    rule = HistoryRule(frames=40, min_frames=20, quantile=0.15)
    newest, older = [0.3] * 40, [0.05] * 60
    assert baseline_from_history(haze=newest + older, occupancy=[], rule=rule).haze == 0.3


@pytest.mark.parametrize("boxed", [False, True])
@pytest.mark.parametrize(
    "baseline",
    [None, CameraBaseline(haze=0.5, occupancy=0.1, frames=19, occupancy_frames=19),
     CameraBaseline(None, None, 0)],
)  # fmt: skip
def test_a_new_camera_is_held_to_the_absolute_threshold(baseline, boxed) -> None:
    assert camera_thresholds(DEFAULTS, baseline, RULE, boxed=boxed) == DEFAULTS


def test_a_camera_with_a_typical_clear_view_keeps_todays_limit() -> None:
    assert haze_limit(0.1, DEFAULTS) == pytest.approx(DEFAULTS.max_haze, abs=0.005)


def test_a_camera_that_always_reads_veiled_is_not_excused() -> None:
    veiled = CameraBaseline(haze=0.7, occupancy=0.4, frames=500)
    held_to = camera_thresholds(DEFAULTS, veiled, RULE, boxed=False)
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
        photos=("brick", "moon", "gravel", "camera"),
        synthetic_railcars=1,
        size=SIZE,
        baselines=True,
    )
    by_key = {(r["set"], r["check"]): r for r in rows}
    for check, defective in (("haze", 12), ("occupancy", 8)):
        absolute, own = by_key["photos", check], by_key["photos" + WITH_BASELINE, check]
        assert absolute["false_alarms"] >= 1, check  # the lunar plain, the cameraman's sky
        assert own["false_alarms"] == 0, own
        assert own["detected"] == own["defective"] == absolute["detected"] == defective
        synthetic = by_key["synthetic" + WITH_BASELINE, check]
        assert synthetic["detected"] == synthetic["defective"] > 0
        assert synthetic["false_alarms"] == 0


# --- occupancy, frames without a railcar box --------------------------------------------------


def test_a_camera_with_a_flat_centre_passes_its_clean_frames_and_flags_an_empty_one() -> None:
    cameraman = photo_camera("camera")  # the sky fills much of the centre window
    held_to = camera_thresholds(DEFAULTS, cameraman, RULE, boxed=False)

    assert not results_of(photo_frame("camera"))["occupancy"].passed
    assert results_of(photo_frame("camera"), thresholds=held_to)["occupancy"].passed
    empty = photo_frame("camera", calibration.empty_centre)
    assert not results_of(empty, thresholds=held_to)["occupancy"].passed


def test_frames_with_a_railcar_box_keep_the_absolute_occupancy_threshold() -> None:
    # With a box, a low value may be a railcar out of view: the camera's texture says nothing.
    baseline = CameraBaseline(haze=0.1, occupancy=0.1, frames=100, occupancy_frames=100)
    assert camera_thresholds(DEFAULTS, baseline, RULE, boxed=True).min_occupancy == 0.25
    assert camera_thresholds(DEFAULTS, baseline, RULE, boxed=False).min_occupancy < 0.25


def test_a_camera_that_never_sees_texture_is_not_excused() -> None:
    blank = CameraBaseline(haze=0.1, occupancy=0.01, frames=100, occupancy_frames=100)
    held_to = camera_thresholds(DEFAULTS, blank, RULE, boxed=False)
    assert held_to.min_occupancy == pytest.approx(0.25 * DEFAULTS.min_occupancy_normal)
    assert occupancy_limit(0.42, DEFAULTS) == pytest.approx(DEFAULTS.min_occupancy)  # as now
