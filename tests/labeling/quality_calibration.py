"""Calibration of the frame quality checks on real photographs degraded under control.

The photographs are those scikit-image ships (no download): people, objects, a night scene,
textures close to a scrap pile (gravel, brick, grass) and a featureless surface (moon). Each is
centre-cropped to 16:9 and mirror-tiled, at its native resolution, into a camera frame (1920x1080,
or 1280x720 and 960x540: several resolutions), so that the frame keeps detail down to its own
pixels as a camera's does (an upscaled photograph would be blurred at the frame's scale); then
degraded at frame resolution (Gaussian blur of known sigma in frame pixels, exposure scaling with
clipping, a veil of grey-white airlight, an empty centre, a safety-orange garment pasted in),
JPEG-encoded at quality 90, and run through `check_frame_bytes` exactly as a stored frame would
be. Synthetic railcars from operations/synth.py, whose truth records the defect of every frame,
make the second set.

Each photograph is also one fixed camera with a history: `camera_baselines` measures twenty other
clear views of it (crops of 60 % of the photograph at other places, each mirror-tiled into a frame
as above, never the test frame itself) and computes the camera's baseline through the product's
own code (labeling.quality_baseline); `with_baselines` judges the same measured values again, each
photograph's against its camera's thresholds. The synthetic railcars' camera has the frames of
other unloadings (another seed, half of them defective, dust included) as its history.

Per check: the detection rate (frames carrying that check's defect that it flags), the false-alarm
rate (clean frames it flags), and the share of mildly degraded frames (below the defect level) it
flags: tests/labeling/quality_calibration_report.py, which `python -m` runs to print the tables.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import skimage.data

from labeling import quality_baseline, quality_measures
from labeling.quality import CHECKS, QualityThresholds, check_frame_bytes, verdict
from labeling.quality_baseline import CameraBaseline, HistoryRule
from operations import synth

PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "motorcycle",
    "camera",
    "coins",
    "moon",
    "gravel",
    "brick",
    "grass",
)
# The astronaut wears a safety-orange launch suit: a real high-visibility garment, so for the
# extraneous check that photograph is a positive, not a clean frame.
HIGHVIS_PHOTOS = frozenset({"astronaut"})
FRAME_SIZE = (1920, 1080)
AIRLIGHT_BGR = (230, 228, 225)  # grey-white, as sunlit dust


@dataclass(frozen=True)
class Degradation:
    check: str | None  # the check meant to flag it; None for a clean frame
    level: str
    mild: bool  # below the defect level: the check should let it through
    apply: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Sample:
    source: str  # photo name, or "synthetic"
    degradation: str | None  # the check whose defect was applied; None for a clean frame
    level: str
    mild: bool
    expected: frozenset[str]  # checks that should flag the frame
    data: bytes
    railcar_box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Outcome:
    sample: Sample
    failed: frozenset[str]  # checks that flagged the frame
    values: dict[str, float | None]


def blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda img: cv2.GaussianBlur(img, (0, 0), sigma)


def exposure(gain: float) -> Callable[[np.ndarray], np.ndarray]:
    """Scale the 8-bit values and clip, as a wrong gain does (and as operations/synth does)."""
    table = np.clip(np.arange(256) * gain, 0, 255).astype(np.uint8)
    return lambda img: cv2.LUT(img, table)


def haze(alpha: float) -> Callable[[np.ndarray], np.ndarray]:
    """A uniform veil: I = (1 - alpha) J + alpha A, the atmospheric scattering model."""

    def apply(img: np.ndarray) -> np.ndarray:
        veil = np.empty_like(img)
        veil[:] = AIRLIGHT_BGR
        return cv2.addWeighted(img, 1 - alpha, veil, alpha, 0)

    return apply


def empty_centre(img: np.ndarray) -> np.ndarray:
    """The centre window (where the railcar's scrap would be) replaced by an empty, uniform floor:
    the photograph's own illumination (a wide low-pass) plus a little sensor noise."""
    h, w = img.shape[:2]
    fx0, fy0, fx1, fy1 = quality_measures.CENTRE_WINDOW
    x0, y0, x1, y1 = round(fx0 * w), round(fy0 * h), round(fx1 * w), round(fy1 * h)
    floor = cv2.GaussianBlur(img, (0, 0), w / 24).astype(np.float32)
    noise = np.random.default_rng(7).normal(0, 2.0, floor.shape).astype(np.float32)
    out = img.copy()
    out[y0:y1, x0:x1] = np.clip(floor + noise, 0, 255).astype(np.uint8)[y0:y1, x0:x1]
    return out


@functools.cache
def _suit_patch() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's safety-orange sleeve and torso, a real photograph of a high-visibility
    garment, with an elliptical alpha: roughly a worker seen from above."""
    crop = cv2.cvtColor(skimage.data.astronaut()[240:400, 30:130], cv2.COLOR_RGB2BGR)
    h, w = crop.shape[:2]
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w // 2, h // 2), (w // 2 - 2, h // 2 - 2), 0, 0, 360, 1.0, -1)
    return crop, cv2.GaussianBlur(alpha, (0, 0), 1.5)


def worker(frame_share: float, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """Paste the suit, covering `frame_share` of the frame, somewhere in the centre window."""

    def apply(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        crop, alpha = _suit_patch()
        scale = np.sqrt(frame_share * h * w / (crop.shape[0] * crop.shape[1] * np.pi / 4))
        size = (max(2, round(crop.shape[1] * scale)), max(2, round(crop.shape[0] * scale)))
        patch = cv2.resize(crop, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        a = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)[..., None]
        rng = np.random.default_rng(seed)
        fx0, fy0, fx1, fy1 = quality_measures.CENTRE_WINDOW
        x = int(rng.uniform(fx0 * w, max(fx0 * w + 1, fx1 * w - size[0])))
        y = int(rng.uniform(fy0 * h, max(fy0 * h + 1, fy1 * h - size[1])))
        out = img.copy()
        roi = out[y : y + size[1], x : x + size[0]].astype(np.float32)
        out[y : y + size[1], x : x + size[0]] = (roi * (1 - a) + patch * a).astype(np.uint8)
        return out

    return apply


DEGRADATIONS: tuple[Degradation, ...] = (
    Degradation(None, "clean", False, lambda img: img),
    # Sigma in pixels of the camera frame.
    Degradation("blur", "sigma 0.5", True, blur(0.5)),
    Degradation("blur", "sigma 1", False, blur(1)),
    Degradation("blur", "sigma 2", False, blur(2)),
    Degradation("blur", "sigma 3", False, blur(3)),
    Degradation("blur", "sigma 5", False, blur(5)),
    Degradation("blur", "sigma 7", False, blur(7)),
    Degradation("underexposure", "x0.6", True, exposure(0.6)),
    Degradation("underexposure", "x0.35", False, exposure(0.35)),
    Degradation("underexposure", "x0.2", False, exposure(0.2)),
    Degradation("overexposure", "x1.5", True, exposure(1.5)),
    Degradation("overexposure", "x2.5", False, exposure(2.5)),
    Degradation("overexposure", "x4", False, exposure(4)),
    Degradation("haze", "alpha 0.2", True, haze(0.2)),
    Degradation("haze", "alpha 0.4", False, haze(0.4)),
    Degradation("haze", "alpha 0.6", False, haze(0.6)),
    Degradation("haze", "alpha 0.8", False, haze(0.8)),
    Degradation("occupancy", "empty centre", False, empty_centre),
    Degradation("extraneous", "suit 0.3% of frame", False, worker(0.003, seed=1)),
    Degradation("extraneous", "suit 0.1% of frame", False, worker(0.001, seed=2)),
)


@functools.cache
def photo(name: str) -> np.ndarray:
    """A scikit-image sample photograph as BGR, centre-cropped to 16:9 at native resolution."""
    if name == "motorcycle":
        rgb = skimage.data.stereo_motorcycle()[0]
    else:
        rgb = getattr(skimage.data, name)()
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    img = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    if w * 9 > h * 16:
        cw = round(h * 16 / 9)
        return np.ascontiguousarray(img[:, (w - cw) // 2 : (w - cw) // 2 + cw])
    ch = round(w * 9 / 16)
    return np.ascontiguousarray(img[(h - ch) // 2 : (h - ch) // 2 + ch])


def camera_frame(img: np.ndarray, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """A `size` frame of the photograph at its native resolution: mirror-tiled (seamless) and
    cropped from the middle, never resampled, so it keeps its detail down to the frame's pixels."""
    width, height = size
    block = np.concatenate([img, img[:, ::-1]], axis=1)
    block = np.concatenate([block, block[::-1]], axis=0)
    reps = (height // block.shape[0] + 2, width // block.shape[1] + 2, 1)
    tiled = np.tile(block, reps)
    y = (tiled.shape[0] - height) // 2
    x = (tiled.shape[1] - width) // 2
    return np.ascontiguousarray(tiled[y : y + height, x : x + width])


def to_frame_bytes(img: np.ndarray, size: tuple[int, int] = FRAME_SIZE) -> bytes:
    """A camera frame (`camera_frame` when the image is not one yet), JPEG-encoded at quality
    90, as the plant stores frames."""
    if img.shape[1] != size[0] or img.shape[0] != size[1]:
        img = camera_frame(img, size)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def photo_samples(
    *, photos: tuple[str, ...] = PHOTOS, size: tuple[int, int] = FRAME_SIZE
) -> Iterator[Sample]:
    for name in photos:
        img = camera_frame(photo(name), size)
        real_suit = name in HIGHVIS_PHOTOS
        for d in DEGRADATIONS:
            if d.check == "extraneous" and real_suit:
                continue  # already shows a safety-orange garment
            expected = set() if d.check is None or d.mild else {d.check}
            level = d.level
            if d.check is None and real_suit:
                expected, level = {"extraneous"}, "real suit (astronaut)"
            data = to_frame_bytes(d.apply(img), size)
            yield Sample(name, d.check, level, d.mild, frozenset(expected), data)
        # The railcar box path of occupancy: the same clean photo, its box mostly out of view.
        w, h = size
        yield Sample(
            name,
            "occupancy",
            "box 70% out of view",
            False,
            frozenset({"occupancy"}),
            to_frame_bytes(img, size),
            (0.7 * w, 0.1 * h, 1.7 * w, 0.9 * h),
        )


_SYNTH_CHECK = {
    "blur": "blur",
    "under_exposure": "underexposure",
    "over_exposure": "overexposure",
    "dust_haze": "haze",
    "empty": "occupancy",
}


def synthetic_samples(
    *, railcars: int = 3, size: tuple[int, int] = FRAME_SIZE, seed: int = 2026
) -> Iterator[Sample]:
    """Frames of synthetic unloadings with their recorded defects, each with its railcar box;
    a quarter of the clean frames also get a worker pasted in, and one in eight is shifted so
    that most of the railcar is out of view."""
    for index in range(railcars):
        unloading = synth.render_unloading(
            rng=synth.railcar_rng(seed=seed, index=index),
            width=size[0],
            height=size[1],
            layers=(3, 4),
            frames_per_layer=3,
            defect_share=0.5,
        )
        for i in range(len(unloading)):
            img = cv2.cvtColor(unloading.frame(i), cv2.COLOR_RGB2BGR)
            box = tuple(float(v) for v in unloading.railcar_boxes[i])
            defect = unloading.defects[i]
            if defect is not None:
                check, level = _SYNTH_CHECK[defect], defect
            elif i % 8 == 3:
                img, box = _shift_out_of_view(img, box, 0.6)
                check, level = "occupancy", "railcar 60% out of view"
            elif i % 4 == 1:
                img = worker(0.002, seed=i)(img)
                check, level = "extraneous", "suit 0.2% of frame"
            else:
                check, level = None, "clean"
            expected = frozenset() if check is None else frozenset({check})
            data = to_frame_bytes(img, size)
            yield Sample("synthetic", check, level, False, expected, data, box)


def _shift_out_of_view(
    img: np.ndarray, box: tuple[float, ...], share: float
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Move the scene left so that `share` of the railcar box leaves the frame; the uncovered
    strip on the right gets the yard's colour, as if the camera had panned."""
    x0, y0, x1, y1 = box
    shift = round(x0 + share * (x1 - x0))
    out = np.empty_like(img)
    out[:, : img.shape[1] - shift] = img[:, shift:]
    out[:, img.shape[1] - shift :] = np.median(img[: img.shape[0] // 5], axis=(0, 1))
    return out, (x0 - shift, y0, x1 - shift, y1)


def evaluate(samples: Iterator[Sample], thresholds: QualityThresholds) -> list[Outcome]:
    outcomes = []
    for sample in samples:
        results = check_frame_bytes(
            sample.data, railcar_box=sample.railcar_box, thresholds=thresholds
        )
        failed = frozenset(r.check for r in results if not r.passed)
        outcomes.append(Outcome(sample, failed, {r.check: r.value for r in results}))
    return outcomes


HISTORY_GRID = (5, 4)  # 20 views: the default least history (HistoryRule.min_frames)
HISTORY_CROP = 0.6


def history_views(img: np.ndarray, size: tuple[int, int] = FRAME_SIZE) -> Iterator[np.ndarray]:
    """Other clear views of a photograph, as a fixed camera sees other railcars: crops of
    HISTORY_CROP of it on a grid of places, each made into a camera frame like the test frame."""
    h, w = img.shape[:2]
    ch, cw = round(h * HISTORY_CROP), round(w * HISTORY_CROP)
    cols, rows = HISTORY_GRID
    for y in np.linspace(0, h - ch, rows).round().astype(int):
        for x in np.linspace(0, w - cw, cols).round().astype(int):
            yield camera_frame(np.ascontiguousarray(img[y : y + ch, x : x + cw]), size)


def baseline_of(frames: Iterator[tuple[bytes, tuple[float, ...] | None]]) -> CameraBaseline:
    """A camera's baseline from its history frames, measured and computed as the product does
    (labeling.camera_baselines reads the same two values from the stored checks)."""
    haze, occupancy = [], []
    for data, box in frames:
        values = {
            r.check: r.value
            for r in check_frame_bytes(data, railcar_box=box, thresholds=QualityThresholds())
        }
        if values.get("haze") is not None:
            haze.append(values["haze"])
            if box is None:  # as the product reads occupancy: box-less frames only
                occupancy.append(values["occupancy"])
    return quality_baseline.baseline_from_history(
        haze=haze, occupancy=occupancy, rule=HistoryRule()
    )


def photo_baselines(
    *, photos: tuple[str, ...] = PHOTOS, size: tuple[int, int] = FRAME_SIZE
) -> dict[str, CameraBaseline]:
    return {
        name: baseline_of((to_frame_bytes(v, size), None) for v in history_views(photo(name), size))
        for name in photos
    }


def synthetic_baseline(
    *, railcars: int = 2, size: tuple[int, int] = FRAME_SIZE, seed: int = 7
) -> CameraBaseline:
    """The synthetic railcars' camera: every frame of other unloadings, defects included."""
    samples = synthetic_samples(railcars=railcars, size=size, seed=seed)
    return baseline_of((s.data, s.railcar_box) for s in samples)


def with_baselines(
    outcomes: list[Outcome],
    thresholds: QualityThresholds,
    baselines: dict[str, CameraBaseline],
) -> list[Outcome]:
    """The same measured values judged again, each frame against its camera's thresholds."""
    rule = HistoryRule()
    judged = []
    for o in outcomes:
        held_to = quality_baseline.camera_thresholds(
            thresholds,
            baselines.get(o.sample.source),
            rule,
            boxed=o.sample.railcar_box is not None,
        )
        failed = frozenset(
            c for c in CHECKS if c in o.values and not verdict(c, o.values[c], held_to)
        )
        judged.append(Outcome(o.sample, failed, o.values))
    return judged
