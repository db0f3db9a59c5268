"""The pixel measures behind the frame quality checks (labeling/quality.py): NumPy and OpenCV only.

Every measure but blur runs on one small working copy of the frame, brought to a fixed area of
`WORK_AREA` pixels (480x270 for a 16:9 frame) whatever the camera's resolution, so that a 4K and
an HD camera looking at the same railcar give the same values, and so that all measures together
cost a few milliseconds, well under one JPEG decode of the full frame. Blur is a width in camera
pixels, so `sharpness` reads a few tiles of the full-resolution frame instead. The railcar box, when
given in pixels of the full frame, is scaled onto the working copy; the photometric measures
(blur, exposure, haze, safety colours) then look at the railcar only, not at the yard around it.

The structural constants below (sizes, windows, colour ranges) are design choices, fixed here and
documented in docs/quality-checks.md; the thresholds the measures are held to are policy and live
in `quality.QualityThresholds`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

WORK_AREA = 480 * 270
MIN_WORK_SIDE = 16  # a strip of extreme aspect still gets a measurable working copy

# Occupancy. Without a railcar box, a fixed camera is assumed to centre the railcar: this window
# (fractions of the frame) stands in for it. With a box, the scrap surface is the box inset by
# BOX_INSET on each side, which leaves out the railcar walls.
CENTRE_WINDOW = (0.15, 0.20, 0.85, 0.80)
BOX_INSET = 0.15
TEXTURE_CELL = 16  # working pixels, about 64 px of a 1920-wide frame
# A cell shows scrap when its luminance std reaches this share of the whole frame's std: scrap
# pieces and their shadows vary as much as the frame does, an empty floor far less. Relative, so
# exposure gain and haze (which scale every std alike) do not change the verdict.
TEXTURE_REL_STD = 0.3
TEXTURE_MIN_STD = 1.0  # grey levels; below this a cell is flat whatever the frame does

# Safety colours (OpenCV HSV: hue 0-179, saturation and value 0-255). Fluorescent orange-red and
# yellow-green, as on EN ISO 20471 high-visibility clothing. Hues 15-27 (30-54 degrees, signal
# yellow) are left out on purpose: crane booms are painted that colour and are in every grab frame.
HIGHVIS_HUES = ((3, 14), (28, 40))
HIGHVIS_MIN_SATURATION = 150
HIGHVIS_MIN_VALUE = 190

# Blur (sharpness): tiles of the railcar region at the camera's own resolution, in pixels, how
# many, and the share of them (the most structured) that the score reads.
SHARPNESS_TILE = 128
SHARPNESS_GRID = (4, 5)
SHARPNESS_KEEP = 0.5
# The score is this percentile of the tiles' scores: a sharp frame has crisp tiles somewhere,
# a blurred one none, whatever the scene's own share of fine texture.
SHARPNESS_PERCENTILE = 80

HAZE_LOW_PERCENTILE = 1.0
HAZE_HIGH_PERCENTILE = 99.0
DARK_LEVEL = 5  # at or below: clipped to black (reported in the detail only)
CLIPPED_LEVEL = 250  # at or above: clipped highlight


@dataclass(frozen=True)
class FrameMeasures:
    width: int  # of the decoded frame
    height: int
    aspect: float  # width / height
    sharpness: float  # fine-detail score at the camera's pixel scale, 0 = none finer than 2:1
    mean_luma: float  # 0-255, over the railcar region
    dark_share: float  # share of the region at or below DARK_LEVEL (informative)
    clipped_share: float  # share of the region at or above CLIPPED_LEVEL
    haze: float  # low percentile of the dark channel / high percentile of luminance
    occupancy: float  # estimated share of the frame showing a loaded railcar
    railcar_share: float  # share of the frame the railcar (box, or centre window) covers
    textured_share: float  # share of the scrap-surface cells that show texture
    highvis_share: float  # share of the railcar region in safety colours
    region: str  # what the photometric measures looked at


def working_size(width: int, height: int) -> tuple[int, int]:
    scale = math.sqrt(WORK_AREA / (width * height))
    return (
        max(MIN_WORK_SIDE, round(width * scale)),
        max(MIN_WORK_SIDE, round(height * scale)),
    )


def working_copy(image: np.ndarray) -> np.ndarray:
    """Resize to `working_size`: halve with INTER_AREA while that stays above the target (the
    exact 2:1 case is OpenCV's fast path, ten times cheaper than one 4:1 INTER_AREA), then one
    final resize."""
    height, width = image.shape[:2]
    target_w, target_h = working_size(width, height)
    small = image
    while small.shape[1] >= 2 * target_w and small.shape[0] >= 2 * target_h:
        small = cv2.resize(
            small, (small.shape[1] // 2, small.shape[0] // 2), interpolation=cv2.INTER_AREA
        )
    if small.shape[1] != target_w or small.shape[0] != target_h:
        shrinking = small.shape[1] > target_w and small.shape[0] > target_h
        small = cv2.resize(
            small,
            (target_w, target_h),
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
        )
    return small


def parse_box(box: Sequence[float] | None) -> tuple[float, float, float, float] | None | str:
    """None: no box known. A 4-tuple: a usable box. A string: why there is no railcar."""
    if box is None:
        return None
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError):
        return "railcar box is not four numbers"
    if not values:
        return "no railcar detected in this frame"
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        return "railcar box is not four finite numbers"
    x0, y0, x1, y1 = values
    if x1 <= x0 or y1 <= y0:
        return "railcar box is empty"
    return x0, y0, x1, y1


def _clip_rect(
    rect: tuple[float, float, float, float], width: int, height: int
) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, math.floor(rect[0])), max(0, math.floor(rect[1]))
    x1, y1 = min(width, math.ceil(rect[2])), min(height, math.ceil(rect[3]))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def sharpness(image_bgr: np.ndarray, rect: tuple[int, int, int, int] | None) -> float:
    """Fine-detail score of `rect` (pixels of the full frame; None: all of it) at the camera's
    own pixel scale: 0 = nothing finer than a 2:1 reduction shows, about 1 = a sharp scene.

    Blur is a width in camera pixels (a lens out of focus, dust on the window), so it is measured
    at full resolution, never on the working copy, where a 1920-wide frame's 3 px blur shrinks to
    under one pixel. SHARPNESS_GRID tiles of SHARPNESS_TILE pixels are read from the region and
    the more structured half kept (flat sky, walls and floor say nothing about focus). In each,
    for two octaves, full vs 2:1 and 2:1 vs 4:1, the gradient energy of the finer scale over the
    coarser: a smooth ramp gives 1/4 (its gradient per pixel halves), natural scenes close to 1.
    A tile's ratio is its lower octave's (the first catches a blur of 2 px and more; sensor noise
    added after a strong blur refills it, and the second catches the blur there); the frame's is
    the SHARPNESS_PERCENTILE of its tiles', mapped 1/4 -> 0 and 1 -> 1. Being ratios, the scores
    ignore exposure and haze. About 2 ms a frame: 20 small tiles, whatever the resolution.
    """
    height, width = image_bgr.shape[:2]
    x0, y0, x1, y1 = rect or (0, 0, width, height)
    side = min(SHARPNESS_TILE, (x1 - x0) // 2, (y1 - y0) // 2) // 4 * 4
    if side < 8:
        return 0.0
    rows, cols = SHARPNESS_GRID
    energies = []
    for y in np.linspace(y0, y1 - side, rows).astype(int):
        for x in np.linspace(x0, x1 - side, cols).astype(int):
            tile = cv2.cvtColor(image_bgr[y : y + side, x : x + side], cv2.COLOR_BGR2GRAY)
            scales = [tile.astype(np.float32)]
            for _ in range(2):
                half = scales[-1].shape[0] // 2
                scales.append(cv2.resize(scales[-1], (half, half), interpolation=cv2.INTER_AREA))
            energies.append([_gradient_energy(scale) for scale in scales])
    found = np.asarray(energies)
    structured = found[np.argsort(-found[:, 1])[: max(1, round(len(found) * SHARPNESS_KEEP))]]
    structured = structured[structured[:, 2] > 1e-6]
    if not len(structured):
        return 0.0  # flat: nothing to judge sharpness by
    fine, middle, coarse = structured.T
    ratio = np.minimum(fine / middle, middle / coarse)
    return max(0.0, (float(np.percentile(ratio, SHARPNESS_PERCENTILE)) - 0.25) / 0.75)


def _gradient_energy(gray: np.ndarray) -> float:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=1)
    return float(cv2.mean(gx * gx + gy * gy)[0])


def _percentile(hist: np.ndarray, q: float) -> int:
    cdf = np.cumsum(hist)
    return int(np.searchsorted(cdf, cdf[-1] * q / 100.0))


def haze(region_bgr: np.ndarray, luma_hist: np.ndarray) -> float:
    """1st percentile of the dark channel (min over B, G, R) over the 99th of luminance.

    Dust or smoke adds airlight to every pixel: the darkest pixels rise towards it and the
    brightest fall towards it, so the ratio climbs towards 1 whatever the airlight's brightness,
    while a clear view of a scrap pile keeps deep shadows (ratio near 0). Gain does not move it.
    """
    dark = np.minimum(np.minimum(region_bgr[..., 0], region_bgr[..., 1]), region_bgr[..., 2])
    low = _percentile(np.bincount(dark.ravel(), minlength=256), HAZE_LOW_PERCENTILE)
    high = _percentile(luma_hist, HAZE_HIGH_PERCENTILE)
    return min(1.0, (low + 1.0) / (high + 1.0))


def textured_share(gray: np.ndarray, window: tuple[int, int, int, int] | None) -> float:
    """Share of TEXTURE_CELL-sized cells of `window` (working pixels) that show scrap texture."""
    if window is None:
        return 0.0
    x0, y0, x1, y1 = window
    patch = gray[y0:y1, x0:x1]
    ny, nx = max(1, patch.shape[0] // TEXTURE_CELL), max(1, patch.shape[1] // TEXTURE_CELL)
    ch, cw = patch.shape[0] // ny, patch.shape[1] // nx
    cells = patch[: ny * ch, : nx * cw].reshape(ny, ch, nx, cw).swapaxes(1, 2)
    cell_std = cells.reshape(ny * nx, ch * cw).std(axis=1)
    floor = max(TEXTURE_REL_STD * float(gray.std()), TEXTURE_MIN_STD)
    return float(np.count_nonzero(cell_std > floor)) / cell_std.size


def highvis_share(region_bgr: np.ndarray) -> float:
    """Share of the region in fluorescent safety colours, after a 3x3 opening so that isolated
    JPEG colour noise does not count; a vest seen from above is several working pixels wide."""
    hsv = cv2.cvtColor(region_bgr, cv2.COLOR_BGR2HSV)
    mask = np.zeros(hsv.shape[:2], np.uint8)
    for low, high in HIGHVIS_HUES:
        mask |= cv2.inRange(hsv, (low, HIGHVIS_MIN_SATURATION, HIGHVIS_MIN_VALUE), (high, 255, 255))
    if not mask.any():
        return 0.0
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return float(np.count_nonzero(mask)) / mask.size


def _railcar_geometry(
    box: tuple[float, float, float, float] | None | str,
    *,
    width: int,
    height: int,
    work_w: int,
    work_h: int,
) -> tuple[float, tuple[int, int, int, int] | None, tuple[int, int, int, int] | None, str]:
    """Share of the frame the railcar covers, its scrap window and its region (working pixels,
    None for none or the whole frame), and a note on what the photometric measures look at."""
    if box is None:
        fx0, fy0, fx1, fy1 = CENTRE_WINDOW
        window = _clip_rect(
            (fx0 * work_w, fy0 * work_h, fx1 * work_w, fy1 * work_h), work_w, work_h
        )
        return (fx1 - fx0) * (fy1 - fy0), window, None, "whole frame (no railcar box)"
    if isinstance(box, str):
        return 0.0, None, None, f"whole frame ({box})"
    x0, y0, x1, y1 = box
    visible_w = max(0.0, min(x1, width) - max(x0, 0.0))
    visible_h = max(0.0, min(y1, height) - max(y0, 0.0))
    railcar = visible_w * visible_h / (width * height)
    sx, sy = work_w / width, work_h / height
    scaled = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
    dx, dy = BOX_INSET * (scaled[2] - scaled[0]), BOX_INSET * (scaled[3] - scaled[1])
    inset = (scaled[0] + dx, scaled[1] + dy, scaled[2] - dx, scaled[3] - dy)
    window = _clip_rect(inset, work_w, work_h)
    region = _clip_rect(scaled, work_w, work_h)
    if region is None or railcar == 0.0:
        return 0.0, None, None, "whole frame (railcar box outside the frame)"
    if min(region[2] - region[0], region[3] - region[1]) < 4:
        return railcar, window, None, "whole frame (railcar box too small to measure)"
    return railcar, window, region, "railcar box"


def _full_rect(
    rect: tuple[int, int, int, int] | None, sx: float, sy: float
) -> tuple[int, int, int, int] | None:
    """A rectangle of the working copy in pixels of the full frame."""
    if rect is None:
        return None
    x0, y0, x1, y1 = rect
    return math.floor(x0 * sx), math.floor(y0 * sy), math.ceil(x1 * sx), math.ceil(y1 * sy)


def measure(image_bgr: np.ndarray, *, railcar_box: Sequence[float] | None) -> FrameMeasures:
    """All measures of one decoded 8-bit BGR frame (at least MIN_WORK_SIDE on each side)."""
    height, width = image_bgr.shape[:2]
    small = working_copy(image_bgr)
    sh, sw = small.shape[:2]
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    railcar, scrap_window, region_rect, region = _railcar_geometry(
        parse_box(railcar_box), width=width, height=height, work_w=sw, work_h=sh
    )
    if region_rect is None:
        region_bgr, region_gray = small, gray
    else:
        x0, y0, x1, y1 = region_rect
        region_bgr, region_gray = small[y0:y1, x0:x1], gray[y0:y1, x0:x1]

    luma_hist = np.bincount(region_gray.ravel(), minlength=256)
    pixels = float(region_gray.size)
    texture = textured_share(gray.astype(np.float32), scrap_window)
    return FrameMeasures(
        width=width,
        height=height,
        aspect=width / height,
        sharpness=sharpness(image_bgr, _full_rect(region_rect, width / sw, height / sh)),
        mean_luma=float(np.dot(luma_hist, np.arange(256))) / pixels,
        dark_share=float(luma_hist[: DARK_LEVEL + 1].sum()) / pixels,
        clipped_share=float(luma_hist[CLIPPED_LEVEL:].sum()) / pixels,
        haze=haze(region_bgr, luma_hist),
        occupancy=railcar * texture,
        railcar_share=railcar,
        textured_share=texture,
        highvis_share=highvis_share(np.ascontiguousarray(region_bgr)),
        region=region,
    )
