"""Frames for the quality check tests: real photographs degraded under control, encoded as a
camera would. (The synthetic railcar's frames are the `railcar` fixture of
tests/labeling/conftest.py.)"""

from __future__ import annotations

import cv2
import numpy as np

from labeling.quality import QualityThresholds, check_frame_bytes
from operations import synth_scene
from tests.labeling import quality_calibration as calibration

SIZE = (960, 540)
DEFAULTS = QualityThresholds()
SHARP_PHOTOS = ("coffee", "chelsea", "camera", "coins", "gravel", "motorcycle")


def results_of(data: bytes, box=None, thresholds: QualityThresholds = DEFAULTS) -> dict:
    return {r.check: r for r in check_frame_bytes(data, railcar_box=box, thresholds=thresholds)}


def photo_frame(name: str, degrade=lambda img: img) -> bytes:
    return calibration.to_frame_bytes(
        degrade(calibration.camera_frame(calibration.photo(name), SIZE)), SIZE
    )


def bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def jpeg(image_bgr: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def synthetic_defect(railcar: dict, kind: str, strength: float) -> bytes:
    rgb = cv2.cvtColor(railcar["clean"], cv2.COLOR_BGR2RGB)
    return jpeg(bgr(synth_scene.apply_defect(rgb, kind=kind, strength=strength)))
