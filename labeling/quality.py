"""Frame quality checks (seed 000, section 6.1): which frames may reach annotators, and why not.

Pure functions on bytes or pixels, no Django: the Celery task loads a frame's bytes and its
railcar box, calls `check_frame_bytes`, and stores each `CheckResult` (value, threshold, verdict).
Each check measures one number and holds it to one threshold, so the stored pair explains the
verdict, and after an admin changes a threshold `verdict` re-judges stored values without
decoding the frame again. The measures are in labeling/quality_measures.py; what each one means,
the defaults and their calibration on degraded real photographs are in docs/quality-checks.md.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from labeling import quality_measures
from labeling.quality_measures import FrameMeasures

CHECKS = (
    "decode",
    "aspect_ratio",
    "blur",
    "underexposure",
    "overexposure",
    "haze",
    "occupancy",
    "extraneous",
)

# Not policy: bounds that keep a worker safe from hostile files. A 1920x1080 frame is 2 MP.
MAX_PIXELS = 50_000_000  # declared in the header; checked before any pixel is decoded
MIN_SIDE = 16  # a smaller image cannot show a railcar


@dataclass(frozen=True)
class QualityThresholds:
    """Policy: what each check holds its measured value to. Admins may change every field."""

    # Width / height. Plant cameras are 16:9 (1.78) or 4:3 (1.33); 1.2 still admits 5:4 sensors
    # and small crops, 2.4 admits 21:9 (2.33). Outside: a portrait, square, transposed or
    # stitched image, which is not a camera frame.
    min_aspect: float = 1.2
    max_aspect: float = 2.4
    # Fine-detail score of the railcar region at the camera's pixel scale (0 = no detail finer
    # than a 2:1 reduction shows, about 1 = a sharp scene; labeling.quality_measures.sharpness).
    # Between the softest clean frame of the calibration set (0.23, the cat photograph at
    # 1920x1080; 11 photographs at 1920x1080, 1280x720 and 960x540) and the sharpest one blurred
    # with sigma 2 px at frame resolution (0.19, the lunar surface): sigma >= 2 px is always
    # caught, sigma 1 px mostly, 0.5 px rarely. Sharp synthetic railcars score far above.
    min_sharpness: float = 0.21
    # Mean luminance (0-255) of the railcar region. Clean photographs sit at 62-128 and clean
    # synthetic railcars at 65-80; scaled by 0.35 the photographs fall to 21-44. Below 50 most of
    # the scrap lies in the bottom fifth of the range, where JPEG noise and crushed shadows hide
    # inclusions.
    min_mean_luma: float = 50.0
    # Share of the railcar region at or above 250 (clipped highlights, on the working copy).
    # Clean photographs and clean synthetic railcars clip under 1 %; scaled by 2.5, ten of eleven
    # photographs clip 17-95 %. 10 % keeps a tenfold margin over clean frames and catches most of
    # the generator's over-exposures of dark scrap (gain 2.4-3.8); the gentlest clip 7-9 % and
    # pass.
    max_clipped_share: float = 0.10
    # 1st percentile of the dark channel over the 99th of luminance (0 = deep shadows present,
    # 1 = every pixel at one level). Clear views of varied scenes stay under 0.16 (an evenly lit
    # brick wall and the lunar plain read 0.45-0.51 and 0.51-0.56); a 40 % veil of grey-white
    # airlight lifts every calibration photograph to 0.38 or more, synthetic dust reads 0.5-0.65.
    # Holds for a camera without enough history for a baseline of its own (quality_baseline).
    max_haze: float = 0.35
    # A camera with enough history is held to its own clear view h0 instead (quality_baseline):
    # the veil a frame adds, (haze - h0) / (1 - h0), may reach this. 0.28 gives a camera with the
    # typical clear view of the calibration photographs (h0 about 0.1) today's limit,
    # 0.1 + 0.28 x 0.9 = 0.35; the veil estimate reads 0.38 or more at alpha 0.4 on every
    # calibration photograph at 1920x1080, 0.21 at most on their clear frames (the lunar plain).
    max_veil: float = 0.28
    # The highest clear view a camera's history may set: the evenly lit brick wall and the lunar
    # plain read 0.50 and 0.45 in their clear views; synthetic dust reads 0.5-0.65, so a camera
    # that always reads hazier is more likely veiled (a dirty window) than excused.
    max_haze_baseline: float = 0.55
    # Estimated share of the frame showing a loaded railcar: the railcar box's share of the frame
    # (or 0.42, the centre window, without a box) times the share of its scrap surface that shows
    # texture. A loaded synthetic railcar (box 51 % of the frame) reads 0.43-0.51, an empty one
    # 0.09-0.18, one 60 % out of view 0.20. Depends on how the camera frames the railcar: retune
    # per plant, to about half of what a good frame reads.
    min_occupancy: float = 0.25
    # Frames without a railcar box of a camera with a baseline: the centre window's texture share
    # is read against what that camera's loaded railcars usually show (quality_baseline), so
    # `min_occupancy` is multiplied by the camera's usual share, down to this floor: a camera
    # that never sees texture there (an empty floor, a lens smeared over) is not excused. The
    # calibration photographs' cameras read 0.43-1 (the dusk launch lowest), so 0.5 spares them.
    min_occupancy_normal: float = 0.5
    # Share of the railcar region in fluorescent safety colours. A worker's vest seen from above
    # at 1920x1080 covers roughly 0.2 % of the railcar; scrap, rust and the yellow crane boom
    # stay at 0. Clean photographs stay at or under 0.1 % but for warm-lit orange wood (9 %).
    max_highvis_share: float = 0.001

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> QualityThresholds:
        """Thresholds from stored policy: unknown keys are ignored, missing ones take the
        default. A value that is not a finite number raises ValueError: policy is validated when
        it is saved, so a bad one here is a bug to surface, not to paper over."""
        known = {f.name for f in fields(cls)}
        chosen = {}
        for name, raw in values.items():
            if name not in known:
                continue
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(f"threshold {name} must be a finite number, got {raw!r}")
            chosen[name] = value
        return cls(**chosen)

    def as_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in asdict(self).items()}


@dataclass(frozen=True)
class CheckResult:
    check: str  # one of CHECKS
    value: float | None  # the measured value; None when it could not be measured
    threshold: float | None
    passed: bool
    detail: str = ""


# check -> (FrameMeasures field, threshold field, "min" or "max", how the value reads)
_RULES: dict[str, tuple[str, str, str, str]] = {
    "blur": ("sharpness", "min_sharpness", "min", "sharpness {:.3f}"),
    "underexposure": ("mean_luma", "min_mean_luma", "min", "mean luminance {:.1f}"),
    "overexposure": ("clipped_share", "max_clipped_share", "max", "clipped share {:.3f}"),
    "haze": ("haze", "max_haze", "max", "haze {:.3f}"),
    "occupancy": ("occupancy", "min_occupancy", "min", "loaded-railcar share {:.3f}"),
    "extraneous": ("highvis_share", "max_highvis_share", "max", "safety-colour share {:.4f}"),
}


def verdict(check: str, value: float | None, thresholds: QualityThresholds) -> bool:
    """Whether `value`, measured by `check`, passes: what a re-judgement after a policy change
    needs, without the frame. A value that could not be measured never passes."""
    if value is None or not math.isfinite(value):
        return False
    if check == "decode":
        return True
    if check == "aspect_ratio":
        return thresholds.min_aspect <= value <= thresholds.max_aspect
    _, limit_name, kind, _ = _RULES[check]
    limit = getattr(thresholds, limit_name)
    return value >= limit if kind == "min" else value <= limit


def threshold_for(check: str, value: float | None, thresholds: QualityThresholds) -> float | None:
    """The limit `value` is held to by `check` (for the aspect ratio: the bound it breaks, or the
    nearer one); None for the decode check, which has none."""
    if check == "decode":
        return None
    if check == "aspect_ratio":
        low, high = thresholds.min_aspect, thresholds.max_aspect
        if value is None or value < low:
            return low
        return high if value > high or high - value < value - low else low
    return float(getattr(thresholds, _RULES[check][1]))


def judge(measures: FrameMeasures, thresholds: QualityThresholds) -> list[CheckResult]:
    """One result per check, in CHECKS order, for a frame that decoded."""
    results = [
        CheckResult("decode", 1.0, None, True, f"decoded {measures.width}x{measures.height}"),
        _aspect_result(measures.aspect, thresholds),
    ]
    for check, (field_name, limit_name, kind, label) in _RULES.items():
        value = float(getattr(measures, field_name))
        limit = float(getattr(thresholds, limit_name))
        passed = verdict(check, value, thresholds)
        sign = ("<" if kind == "min" else ">") if not passed else (">=" if kind == "min" else "<=")
        detail = f"{label.format(value)} {sign} {limit:g}; {_context(check, measures)}"
        results.append(CheckResult(check, value, limit, passed, detail))
    return results


def _aspect_result(aspect: float, thresholds: QualityThresholds) -> CheckResult:
    low, high = thresholds.min_aspect, thresholds.max_aspect
    passed = verdict("aspect_ratio", aspect, thresholds)
    if aspect < low:
        return CheckResult("aspect_ratio", aspect, low, passed, f"aspect {aspect:.3f} < {low:g}")
    if aspect > high:
        return CheckResult("aspect_ratio", aspect, high, passed, f"aspect {aspect:.3f} > {high:g}")
    nearer = low if aspect - low <= high - aspect else high
    detail = f"aspect {aspect:.3f} within {low:g}..{high:g}"
    return CheckResult("aspect_ratio", aspect, nearer, passed, detail)


def _context(check: str, m: FrameMeasures) -> str:
    if check == "underexposure":
        return f"{m.dark_share:.1%} at or below {quality_measures.DARK_LEVEL}; {m.region}"
    if check == "overexposure":
        return f"mean luminance {m.mean_luma:.1f}; {m.region}"
    if check == "occupancy":
        return f"railcar covers {m.railcar_share:.1%} of the frame, {m.textured_share:.0%} textured"
    return m.region


def measure_image(
    image_bgr: np.ndarray,
    *,
    railcar_box: Sequence[float] | None,
    thresholds: QualityThresholds,
) -> list[CheckResult]:
    """All checks on decoded pixels (8-bit or 16-bit; grey, BGR or BGRA).

    `railcar_box` is [x_min, y_min, x_max, y_max] in pixels of this frame; None when the unloading
    carries no boxes (occupancy then falls back on an image cue), an empty sequence when the
    detector saw no railcar in this frame (occupancy fails with 0). Unusable arrays yield a
    failed "decode" result only.
    """
    image, problem = _as_bgr8(image_bgr)
    if image is None:
        return [_decode_failure(problem)]
    measures = quality_measures.measure(image, railcar_box=railcar_box)
    return judge(measures, thresholds)


def check_frame_bytes(
    data: bytes,
    *,
    railcar_box: Sequence[float] | None,
    thresholds: QualityThresholds,
) -> list[CheckResult]:
    """Decode with OpenCV and run every check. Never raises on any input bytes: a file that
    cannot be decoded, or whose header promises more than MAX_PIXELS, yields one failed
    "decode" result saying why."""
    try:
        problem = _header_problem(data)
        if problem:
            return [_decode_failure(problem)]
        buffer = np.frombuffer(data, np.uint8)
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    except (cv2.error, MemoryError, TypeError, ValueError) as exc:
        return [_decode_failure(f"decoder error: {exc}".splitlines()[0][:200])]
    if image is None:
        return [_decode_failure("OpenCV could not decode the bytes")]
    return measure_image(image, railcar_box=railcar_box, thresholds=thresholds)


def _header_problem(data: bytes) -> str:
    """Why the bytes must not reach the decoder, or "" if they may. Reads the header only."""
    if not isinstance(data, bytes | bytearray | memoryview):
        return f"expected bytes, got {type(data).__name__}"
    if len(data) == 0:
        return "empty file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:
                image_format, (width, height) = header.format or "?", header.size
    except (UnidentifiedImageError, Image.DecompressionBombError):
        return "not a recognised image format"
    except Exception as exc:  # noqa: BLE001
        # Only Pillow's header parsers run in this block, and on garbage they raise a zoo of types
        # (struct.error, SyntaxError, ZeroDivisionError, ...): each means "not a readable image".
        return f"unreadable image header: {type(exc).__name__}: {exc}".splitlines()[0][:200]
    if width * height > MAX_PIXELS:
        return f"header declares {width}x{height}, over the {MAX_PIXELS} pixel limit"
    if image_format == "JPEG" and not bytes(data[-64:]).rstrip(b"\0").endswith(b"\xff\xd9"):
        # libjpeg pads a stream cut short at a scan boundary with grey, without complaint.
        return "truncated JPEG: end-of-image marker missing"
    return ""


def _as_bgr8(image: object) -> tuple[np.ndarray | None, str]:
    if not isinstance(image, np.ndarray):
        return None, f"expected an image array, got {type(image).__name__}"
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        return None, f"unsupported pixel layout {image.shape}"
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        return None, f"unsupported pixel type {image.dtype}"
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        return None, f"image {width}x{height} is too small (under {MIN_SIDE} px on a side)"
    image = np.ascontiguousarray(image)  # OpenCV wants no negative or gapped strides
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image, ""


def _decode_failure(reason: str) -> CheckResult:
    return CheckResult("decode", None, None, False, reason)
