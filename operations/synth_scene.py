"""The top-view scene around a synthetic railcar: ground, track, railcar body, magnet, defects.

Everything is RGB uint8 at frame size unless said otherwise. Geometry is in fractions of the
frame, so a 320x180 frame is a scaled-down 1920x1080 one.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from operations.synth_scrap import LayerSurface, frame_noise

DEFECT_KINDS: tuple[str, ...] = ("blur", "under_exposure", "over_exposure", "dust_haze", "empty")

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    railcar_box: Box  # outer body, ribs included: what a railcar detector would report
    rim: int  # wall top thickness, pixels
    magnet_radius: float  # disc radius while hovering low over the scrap

    def interior(self, depth: int) -> Box:
        """The scrap surface of layer `depth` (0 = top); deeper ones show more inner wall."""
        x0, y0, x1, y1 = self.railcar_box
        inset = self.rim + round(self.rim * 0.45 * min(depth, 8))
        return x0 + inset, y0 + inset, x1 - inset, y1 - inset


def make_layout(*, width: int, height: int, rng: np.random.Generator) -> Layout:
    # The track is fixed under the camera; a railcar stops a little earlier or later along it.
    shift = rng.uniform(-0.025, 0.025) * width
    x0, x1 = round(0.045 * width + shift), round(0.955 * width + shift)
    y0, y1 = round(0.30 * height), round(0.86 * height)
    rim = max(2, round(0.045 * (y1 - y0)))
    # Sized for a peak IoU(magnet, railcar) of about 0.16 (a 2 m magnet over a 3.2 m wide car at
    # 16:9), and never wider than the car.
    radius = min(0.5 * np.sqrt(rng.uniform(0.14, 0.18) * (x1 - x0) * (y1 - y0)), 0.45 * (y1 - y0))
    return Layout(width, height, (x0, y0, x1, y1), rim, radius)


@functools.lru_cache(maxsize=2)
def _ground(width: int, height: int) -> np.ndarray:
    """Yard concrete above the track, ballast below, rails and sleepers: float32 RGB."""
    noise = frame_noise(height, width)
    fine, med = noise.fine[:height, :width], noise.medium[:height, :width]
    coarse = noise.coarse[:height, :width]
    img = np.empty((height, width, 3), np.float32)
    yard = np.array([132.0, 127.0, 118.0])
    ballast = np.array([112.0, 104.0, 95.0])
    split = int(0.27 * height)
    img[:split] = (
        yard * (1 + 0.05 * fine[:split] - 0.1 * np.clip(coarse[:split], 0, None))[..., None]
    )
    img[split:] = ballast * (1 + 0.28 * fine[split:] + 0.1 * med[split:])[..., None]
    cy, car_h = 0.58 * height, 0.56 * height

    def hband(yc: float, half: float, colour: tuple[float, float, float], y_from: int = 0) -> None:
        a, b = max(y_from, round(yc - half)), round(yc + half)
        img[a:b] = np.array(colour) * (1 + 0.05 * fine[a:b])[..., None]

    for track_y in (cy, 0.6 * car_h + cy + 0.5 * car_h):  # our track and the neighbouring one
        top, bottom = round(track_y - 0.42 * car_h), round(track_y + 0.42 * car_h)
        step, sw = 0.17 * car_h, 0.07 * car_h
        for k in range(int(width / step) + 2):
            xs = round(k * step)
            tie = img[top:bottom, xs : xs + max(1, round(sw))]
            tie[:] = (
                np.array([78.0, 62.0, 48.0])
                * (1 + 0.1 * med[top:bottom, xs : xs + tie.shape[1]])[..., None]
            )
        for side in (-1, 1):
            rail_y = track_y + side * 0.24 * car_h
            hband(rail_y, max(1.0, 0.018 * car_h), (70.0, 62.0, 55.0))
            hband(rail_y - 0.004 * car_h, max(0.5, 0.006 * car_h), (172.0, 168.0, 160.0))
    cv2.line(img, (0, split - 2), (width, split - 2), (190, 170, 60), max(1, height // 270))
    return img


def railcar_scene(layout: Layout) -> np.ndarray:
    """Ground with the empty railcar on it: uint8 RGB."""
    img = _ground(layout.width, layout.height).copy()
    x0, y0, x1, y1 = layout.railcar_box
    rim = layout.rim
    noise = frame_noise(layout.height, layout.width)
    # Shadow of the car on the ground, bottom-right.
    sh = max(1, round(0.03 * (y1 - y0)))
    img[y0 + sh : y1 + sh, x0 + sh : x1 + sh] *= 0.55
    body = np.array([112.0, 64.0, 40.0], np.float32)
    tex = np.ones((layout.height, layout.width, 1), np.float32)
    car = (slice(y0, y1), slice(x0, x1))
    tex[car] += (0.12 * noise.medium[car] + 0.08 * noise.fine[car])[..., None]
    img[y0:y1, x0:x1] = body * tex[y0:y1, x0:x1]
    # Inner wall faces, seen in perspective down to the floor: the north and west faces are in
    # shade, the south and east ones lit.
    ox0, oy0, ox1, oy1 = layout.interior(0)
    fx0, fy0, fx1, fy1 = layout.interior(8)
    faces = (
        ([(ox0, oy0), (ox1, oy0), (fx1, fy0), (fx0, fy0)], 0.42),
        ([(ox0, oy0), (fx0, fy0), (fx0, fy1), (ox0, oy1)], 0.58),
        ([(ox0, oy1), (fx0, fy1), (fx1, fy1), (ox1, oy1)], 0.95),
        ([(ox1, oy0), (ox1, oy1), (fx1, fy1), (fx1, fy0)], 0.8),
    )
    shade = np.ones((layout.height, layout.width), np.float32)
    for corners, value in faces:
        cv2.fillPoly(shade, [np.array(corners, np.int32)], value)
    ribs = max(1, rim // 3)
    for k in range(1, 12):  # stakes on the inner faces of the long walls
        f = k / 12
        top, bottom = round(ox0 + f * (ox1 - ox0)), round(fx0 + f * (fx1 - fx0))
        cv2.line(shade, (top, oy0), (bottom, fy0), 0.3, ribs)
        cv2.line(shade, (top, oy1), (bottom, fy1), 0.7, ribs)
    inner = (slice(oy0, oy1), slice(ox0, ox1))
    img[inner] = body * 0.9 * tex[inner] * shade[inner][..., None]
    # Wall tops: a bright edge line, then stakes along the long sides.
    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (150, 96, 64), max(1, rim // 4))
    stake_w, step = max(1, round(0.012 * (x1 - x0))), (x1 - x0) / 12
    for k in range(1, 12):
        xs = round(x0 + k * step)
        for ya, yb in ((y0, y0 + rim), (y1 - rim, y1)):
            img[ya:yb, xs : xs + stake_w] *= 0.7
    img[fy0:fy1, fx0:fx1] = np.array([88.0, 54.0, 36.0]) * tex[fy0:fy1, fx0:fx1]
    return np.clip(img, 0, 255).astype(np.uint8)


def layer_frame(scene: np.ndarray, layout: Layout, surface: LayerSurface, depth: int) -> np.ndarray:
    """The empty-railcar scene with the layer's scrap surface in the railcar: uint8 RGB."""
    img = scene.copy()
    x0, y0, x1, y1 = layout.interior(depth)
    img[y0:y1, x0:x1] = surface.image
    # Walls cast a soft shadow on the scrap near the north and west sides.
    fall = min(max(2, 2 * layout.rim), y1 - y0, x1 - x0)
    ramp = np.linspace(0.6, 1.0, fall, dtype=np.float32)
    north = img[y0 : y0 + fall, x0:x1]
    north[:] = north * ramp[:, None, None]
    west = img[y0:y1, x0 : x0 + fall]
    west[:] = west * ramp[None, :, None]
    return img


@functools.lru_cache(maxsize=32)
def _magnet_sprite(radius: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A lifting magnet seen from above, premultiplied (keep, add), and the sprite's margin.

    The sprite is (2 * (radius + margin) + 1) pixels square, the disc in its middle and room
    for the shadow, which falls bottom-right.
    """
    off = max(1, round(0.12 * radius))
    margin = off + max(2, radius // 8)
    half = radius + margin
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32) / radius
    r = np.sqrt(xx * xx + yy * yy)
    alpha = np.clip((1 - r) * radius + 0.5, 0, 1)
    toward_sun = np.clip(-0.6 * xx - 0.8 * yy, -1, 1)
    lit = 1 + 0.2 * toward_sun
    shade = np.where(r > 0.86, 1.5 + 0.5 * np.clip(toward_sun, 0, 1), 1.0)  # the rim
    shade = np.where((r > 0.84) & (r < 0.88), 0.55, shade)
    angle = np.arctan2(yy, xx)
    ribs = (np.abs(np.sin(angle * 4)) < 0.05) & (r > 0.26) & (r < 0.84)
    shade = np.where(ribs, 1.35, shade)
    shade = np.where(r < 0.2, 1.3, shade)  # the hub
    rgb = np.array([60.0, 60.0, 63.0], np.float32) * (lit * shade)[..., None]
    n = 2 * half + 1
    shadow = np.zeros((n, n), np.float32)
    shadow[off:, off:] = alpha[: n - off, : n - off]
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(1.0, radius / 30))
    # Premultiplied: frame * keep + add draws the shadow and the disc in one pass.
    keep = ((1 - alpha) * (1 - 0.55 * shadow))[..., None]
    return keep, np.clip(rgb, 0, 255) * alpha[..., None], margin


def magnet_box(
    *, centre: tuple[float, float], radius: float, width: int, height: int
) -> Box | None:
    """The disc's box clipped to the frame, as a detector reports it; None when out of view."""
    r = max(2, round(radius))
    cx, cy = round(centre[0]), round(centre[1])
    box = (max(0, cx - r), max(0, cy - r), min(width, cx + r + 1), min(height, cy + r + 1))
    return box if box[0] < box[2] and box[1] < box[3] else None


def draw_magnet(
    frame: np.ndarray, *, centre: tuple[float, float], radius: float, pivot: tuple[float, float]
) -> None:
    """Composite the magnet, its shadow and its boom into `frame` in place."""
    h, w = frame.shape[:2]
    r = max(2, round(radius))
    keep, add, margin = _magnet_sprite(r)
    cx, cy = round(centre[0]), round(centre[1])
    half = r + margin
    sx0, sy0 = cx - half, cy - half
    x0, y0 = max(0, sx0), max(0, sy0)
    x1, y1 = min(w, sx0 + 2 * half + 1), min(h, sy0 + 2 * half + 1)
    if x1 > x0 and y1 > y0:
        sl = (slice(y0 - sy0, y1 - sy0), slice(x0 - sx0, x1 - sx0))
        roi = frame[y0:y1, x0:x1] * keep[sl]
        roi += add[sl]
        frame[y0:y1, x0:x1] = roi
    # The boom reaches the magnet from the crane beyond the top of the frame.
    thick = max(2, round(0.28 * r))
    tip = (cx, cy)
    far = (round(pivot[0]), round(pivot[1]))
    cv2.line(frame, tip, far, (70, 64, 44), thick + max(2, thick // 4), cv2.LINE_AA)
    cv2.line(frame, tip, far, (150, 130, 64), thick, cv2.LINE_AA)
    dx, dy = far[0] - tip[0], far[1] - tip[1]
    norm = math.hypot(dx, dy) or 1.0
    ox, oy = round(-dy / norm * thick * 0.25), round(dx / norm * thick * 0.25)
    cv2.line(
        frame,
        (tip[0] + ox, tip[1] + oy),
        (far[0] + ox, far[1] + oy),
        (182, 164, 100),
        max(1, thick // 5),
        cv2.LINE_AA,
    )
    cv2.circle(frame, tip, max(1, round(thick * 0.7)), (58, 56, 50), -1, cv2.LINE_AA)


@functools.lru_cache(maxsize=2)
def _haze(width: int, height: int) -> np.ndarray:
    noise = frame_noise(height, width)
    wave = noise.coarse[:height, :width][..., None]
    return np.clip(np.array([198.0, 190.0, 176.0]) * (1 + 0.06 * wave), 0, 255).astype(np.uint8)


def apply_defect(frame: np.ndarray, *, kind: str, strength: float) -> np.ndarray:
    """Degrade a frame; `strength` in [0, 1] picks a point within each defect's range."""
    h, w = frame.shape[:2]
    if kind == "blur":
        # Blur a quarter-size copy and scale back: the same look as a wide Gaussian, far cheaper.
        sigma = (0.004 + 0.006 * strength) * w
        small = cv2.resize(frame, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), max(0.8, sigma / 4))
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if kind == "under_exposure":
        gain = 0.3 - 0.18 * strength
        table = np.clip(np.arange(256) * gain, 0, 255).astype(np.uint8)
        return cv2.LUT(frame, table)
    if kind == "over_exposure":
        gain = 2.4 + 1.4 * strength
        table = np.clip(np.arange(256) * gain + 30, 0, 255).astype(np.uint8)
        return cv2.LUT(frame, table)
    if kind == "dust_haze":
        a = 0.55 + 0.25 * strength
        return cv2.addWeighted(frame, 1 - a, _haze(w, h), a, 0)
    if kind == "empty":
        return frame  # drawn from the empty railcar already
    raise ValueError(f"unknown defect kind {kind!r}")
