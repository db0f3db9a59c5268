"""Frame quality checks (labeling/quality.py): each on both sides of its threshold, on real
photographs degraded under control and on synthetic railcars. Corrupt input of every kind is
tested in test_quality_corrupt_input.py; the frames are made in quality_frames.py.

Pure functions, no database. Frames are 960x540 here to keep the suite quick (blur is also tried at
1920x1080 and 1280x720); the measures work on a fixed-size copy, blur on full-resolution tiles, and
one test checks that 960x540 and 1920x1080 read the same."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from labeling.quality import CHECKS, QualityThresholds, measure_image, verdict
from tests.labeling import quality_calibration as calibration
from tests.labeling import quality_calibration_report as calibration_report
from tests.labeling.quality_frames import (
    DEFAULTS,
    SHARP_PHOTOS,
    SIZE,
    jpeg,
    photo_frame,
    results_of,
    synthetic_defect,
)

# --- thresholds and results -------------------------------------------------------------------


def test_thresholds_from_mapping_ignore_unknown_keys_and_default_missing_ones() -> None:
    thresholds = QualityThresholds.from_mapping({"min_sharpness": "0.3", "colour": 1.0})
    assert thresholds.min_sharpness == 0.3
    assert thresholds.max_haze == DEFAULTS.max_haze


def test_thresholds_round_trip_through_as_dict() -> None:
    custom = replace(DEFAULTS, max_haze=0.5, min_aspect=1.0)
    assert QualityThresholds.from_mapping(custom.as_dict()) == custom
    assert all(isinstance(v, float) for v in custom.as_dict().values())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "high"])
def test_thresholds_from_mapping_refuse_a_value_that_is_not_a_finite_number(bad) -> None:
    with pytest.raises(ValueError):
        QualityThresholds.from_mapping({"max_haze": bad})


def test_every_threshold_is_documented_in_the_quality_checks_page() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "quality-checks.md").read_text()
    for name in DEFAULTS.as_dict():
        assert f"`{name}`" in page


def test_a_clean_railcar_frame_passes_every_check_in_order(railcar) -> None:
    results = measure_image(railcar["clean"], railcar_box=railcar["box"], thresholds=DEFAULTS)
    assert [r.check for r in results] == list(CHECKS)
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    assert all(r.value is not None for r in results)


def test_a_failed_check_keeps_its_value_threshold_and_reason(railcar) -> None:
    result = results_of(synthetic_defect(railcar, "blur", 0.5), railcar["box"])["blur"]
    assert not result.passed
    assert result.threshold == DEFAULTS.min_sharpness
    assert result.value < result.threshold
    assert f"< {DEFAULTS.min_sharpness:g}" in result.detail


def test_stored_values_can_be_judged_again_under_new_thresholds(railcar) -> None:
    stored = results_of(jpeg(railcar["clean"]), railcar["box"])
    strict = replace(DEFAULTS, min_sharpness=stored["blur"].value + 0.01)
    assert verdict("blur", stored["blur"].value, DEFAULTS)
    assert not verdict("blur", stored["blur"].value, strict)
    assert not verdict("haze", None, DEFAULTS)
    rerun = results_of(jpeg(railcar["clean"]), railcar["box"], thresholds=strict)
    assert not rerun["blur"].passed


# --- aspect ratio -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "passes"),
    [
        (1920, 1080, True),
        (1600, 1200, True),
        (1200, 1000, True),
        (1190, 1000, False),
        (2400, 1000, True),
        (2410, 1000, False),
        (1080, 1920, False),
        (500, 500, False),
    ],
)
def test_aspect_ratio_admits_camera_frames_and_rejects_the_rest(width, height, passes) -> None:
    image = np.full((height // 10, width // 10, 3), 120, np.uint8)
    result = measure_image(image, railcar_box=None, thresholds=DEFAULTS)[1]
    assert result.check == "aspect_ratio"
    assert result.passed is passes
    assert result.value == pytest.approx((width // 10) / (height // 10))


# --- blur -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHARP_PHOTOS)
def test_blur_passes_sharp_photographs_and_flags_them_blurred(name) -> None:
    assert results_of(photo_frame(name))["blur"].passed
    assert results_of(photo_frame(name, calibration.blur(0.5)))["blur"].passed
    assert not results_of(photo_frame(name, calibration.blur(2)))["blur"].passed
    assert not results_of(photo_frame(name, calibration.blur(8)))["blur"].passed


@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_blur_flags_the_synthetic_blur_defect_across_its_range(railcar, strength) -> None:
    assert results_of(jpeg(railcar["clean"]), railcar["box"])["blur"].passed
    blurred = results_of(synthetic_defect(railcar, "blur", strength), railcar["box"])
    assert not blurred["blur"].passed


def test_sharpness_reads_the_same_camera_detail_alike_at_any_frame_size() -> None:
    small = results_of(photo_frame("gravel"))["blur"].value
    large = results_of(calibration.to_frame_bytes(calibration.photo("gravel")))["blur"].value
    assert small == pytest.approx(large, rel=0.15)


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720)])
def test_blur_of_two_pixels_and_more_is_caught_on_every_calibration_photograph(size) -> None:
    """Blur is a width in camera pixels: 2-7 px on a 1920x1080 frame must not hide in the
    working copy, and no clean photograph of the set is taken for blurred."""
    for name in calibration.PHOTOS:
        frame = calibration.camera_frame(calibration.photo(name), size)
        clean = results_of(calibration.to_frame_bytes(frame, size))["blur"]
        assert clean.passed, (name, clean.value)
        for sigma in (2, 3, 5, 7):
            blurred = calibration.to_frame_bytes(calibration.blur(sigma)(frame), size)
            result = results_of(blurred)["blur"]
            assert not result.passed, (name, sigma, result.value)


def test_sharpness_ignores_exposure_and_haze() -> None:
    clean = results_of(photo_frame("coffee"))["blur"].value
    for degrade in (calibration.exposure(0.35), calibration.haze(0.6)):
        assert results_of(photo_frame("coffee", degrade))["blur"].value == pytest.approx(
            clean, rel=0.1
        )


# --- exposure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*SHARP_PHOTOS, "rocket"])
def test_underexposure_passes_clean_photographs_and_flags_them_darkened(name) -> None:
    assert results_of(photo_frame(name))["underexposure"].passed
    assert not results_of(photo_frame(name, calibration.exposure(0.35)))["underexposure"].passed


@pytest.mark.parametrize("name", SHARP_PHOTOS)
def test_overexposure_passes_clean_photographs_and_flags_them_blown_out(name) -> None:
    assert results_of(photo_frame(name))["overexposure"].passed
    assert not results_of(photo_frame(name, calibration.exposure(4)))["overexposure"].passed


def test_a_dark_but_well_exposed_night_photograph_is_not_overexposed_at_gain_2_5() -> None:
    # The rocket at dusk, brightened 2.5x, clips only 3 %: it reads as a normal exposure.
    result = results_of(photo_frame("rocket", calibration.exposure(2.5)))["overexposure"]
    assert result.passed and result.value < 0.05


@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_exposure_checks_flag_the_synthetic_exposure_defects(railcar, strength) -> None:
    dark = results_of(synthetic_defect(railcar, "under_exposure", strength), railcar["box"])
    assert not dark["underexposure"].passed and dark["overexposure"].passed
    # The gentlest over-exposures of the generator (gain 2.4 on dark scrap) clip only 2-12 %, as
    # a normally exposed photograph brightened 1.5x does: below the defect level, by design.
    bright = results_of(synthetic_defect(railcar, "over_exposure", 1.0), railcar["box"])
    assert not bright["overexposure"].passed and bright["underexposure"].passed


def test_exposure_thresholds_hold_on_both_sides_of_the_value(railcar) -> None:
    value = results_of(jpeg(railcar["clean"]), railcar["box"])["underexposure"].value
    assert verdict("underexposure", value, replace(DEFAULTS, min_mean_luma=value - 1))
    assert not verdict("underexposure", value, replace(DEFAULTS, min_mean_luma=value + 1))


# --- haze -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHARP_PHOTOS)
def test_haze_passes_clear_photographs_and_flags_them_veiled(name) -> None:
    assert results_of(photo_frame(name))["haze"].passed
    assert not results_of(photo_frame(name, calibration.haze(0.4)))["haze"].passed
    assert not results_of(photo_frame(name, calibration.haze(0.8)))["haze"].passed


def test_haze_reads_an_evenly_lit_low_contrast_surface_as_hazy() -> None:
    # A known false alarm, kept visible: the lunar plain has no deep shadows, as haze has none.
    assert not results_of(photo_frame("moon"))["haze"].passed


@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_haze_flags_synthetic_dust_and_passes_the_clear_railcar(railcar, strength) -> None:
    assert results_of(jpeg(railcar["clean"]), railcar["box"])["haze"].passed
    dusty = results_of(synthetic_defect(railcar, "dust_haze", strength), railcar["box"])
    assert not dusty["haze"].passed
    assert dusty["underexposure"].passed and dusty["overexposure"].passed


# --- occupancy --------------------------------------------------------------------------------


def test_occupancy_passes_a_loaded_railcar_with_or_without_its_box(railcar) -> None:
    assert results_of(jpeg(railcar["clean"]), railcar["box"])["occupancy"].passed
    assert results_of(jpeg(railcar["clean"]), None)["occupancy"].passed
    assert results_of(jpeg(railcar["grab"]), railcar["box"])["occupancy"].passed


def test_occupancy_flags_an_empty_railcar_with_or_without_its_box(railcar) -> None:
    assert not results_of(jpeg(railcar["empty"]), railcar["box"])["occupancy"].passed
    assert not results_of(jpeg(railcar["empty"]), None)["occupancy"].passed


def test_occupancy_flags_a_railcar_mostly_out_of_view(railcar) -> None:
    x0, y0, x1, y1 = railcar["box"]
    shifted, box = calibration._shift_out_of_view(railcar["clean"], railcar["box"], 0.6)
    result = results_of(jpeg(shifted), box)["occupancy"]
    assert not result.passed
    half = (x0 + 0.3 * (x1 - x0), y0, x1 + 0.3 * (x1 - x0), y1)
    assert results_of(jpeg(railcar["clean"]), half)["occupancy"].value < result.threshold * 1.5


@pytest.mark.parametrize("box", [(), (float("nan"), 0, 10, 10), (50, 50, 40, 60), ("a", 1, 2, 3)])
def test_occupancy_fails_with_zero_when_no_railcar_is_detected(railcar, box) -> None:
    results = results_of(jpeg(railcar["clean"]), box)
    assert results["occupancy"].value == 0.0 and not results["occupancy"].passed
    assert results["blur"].passed  # the other checks fall back on the whole frame


def test_a_railcar_box_larger_than_the_frame_covers_all_of_it(railcar) -> None:
    result = results_of(jpeg(railcar["clean"]), (-1e9, -1e9, 1e9, 1e9))["occupancy"]
    assert "railcar covers 100.0% of the frame" in result.detail


@pytest.mark.parametrize("name", ["gravel", "grass", "chelsea", "motorcycle"])
def test_occupancy_passes_textured_photographs_and_flags_their_empty_centre(name) -> None:
    assert results_of(photo_frame(name))["occupancy"].passed
    assert not results_of(photo_frame(name, calibration.empty_centre))["occupancy"].passed


# --- extraneous objects -----------------------------------------------------------------------


def test_extraneous_ignores_the_yellow_crane_boom_over_the_railcar(railcar) -> None:
    result = results_of(jpeg(railcar["grab"]), railcar["box"])["extraneous"]
    assert result.passed and result.value == 0.0


def test_extraneous_flags_a_worker_in_a_safety_orange_suit_on_the_railcar(railcar) -> None:
    with_worker = calibration.worker(0.002, seed=3)(railcar["clean"])
    assert not results_of(jpeg(with_worker), railcar["box"])["extraneous"].passed


@pytest.mark.parametrize("name", ["gravel", "camera", "chelsea", "grass"])
def test_extraneous_passes_photographs_and_flags_them_with_a_worker_pasted_in(name) -> None:
    assert results_of(photo_frame(name))["extraneous"].passed
    pasted = photo_frame(name, calibration.worker(0.003, seed=5))
    assert not results_of(pasted)["extraneous"].passed


def test_extraneous_flags_the_real_safety_orange_suit_of_the_astronaut() -> None:
    assert not results_of(photo_frame("astronaut"))["extraneous"].passed


# --- calibration ------------------------------------------------------------------------------


def test_calibration_report_detects_each_defect_and_spares_clean_frames() -> None:
    rows = calibration_report.calibration_report(
        photos=("coffee", "gravel", "chelsea"), synthetic_railcars=1, size=SIZE
    )
    by_key = {(r["set"], r["check"]): r for r in rows}
    for check in ("blur", "underexposure", "overexposure", "haze", "occupancy", "extraneous"):
        photos = by_key["photos", check]
        assert photos["defective"] > 0
        assert photos["detected"] / photos["defective"] >= 0.6, photos
    for check in ("blur", "underexposure", "overexposure", "haze"):
        assert by_key["photos", check]["false_alarms"] == 0
        assert by_key["synthetic", check]["false_alarms"] == 0
    assert "| blur | photos |" in calibration_report.markdown_table(rows)
