"""The scrap surface of one synthetic layer and its class map, which is the truth.

A layer is drawn once at full resolution, painter's order, as polygons into integer buffers
(piece id, shadow caster id, class) and shade buffers; colours and textures are applied in one
vectorised pass at the end. Order: a dark pile base, metal pieces of the grade, inclusion blobs,
a few more metal pieces on top (so inclusions are partly buried), then more inclusions until
the target is met. The contamination is counted from the class map, never taken from the target.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from operations.synth_pieces import (
    CONCRETE,
    FLOOR,
    METAL,
    RUBBER,
    SHADOW_DIR,
    SOIL,
    WOOD,
    Piece,
    inclusion_piece,
    metal_piece,
)

GRADES: tuple[str, ...] = ("3A", "3A1", "3AH", "cast iron")
INCLUSION_KINDS: dict[int, str] = {
    SOIL: "soil",
    WOOD: "wood",
    RUBBER: "rubber",
    CONCRETE: "concrete",
}

_SHIFT = 4  # fillPoly sub-pixel bits
_PILE = 6  # texture code of the pile base between pieces
_PILE_COLOUR = (50.0, 45.0, 41.0)
_FLOOR_COLOUR = (92.0, 56.0, 37.0)
_RUST = np.array([110.0, 70.0, 48.0], np.float32)
# Texture amplitudes by texture code: FLOOR, METAL, SOIL, WOOD, RUBBER, CONCRETE, _PILE.
_FINE = np.array([0.08, 0.07, 0.24, 0.05, 0.05, 0.08, 0.12], np.float32)
_MEDIUM = np.array([0.15, 0.08, 0.14, 0.05, 0.03, 0.06, 0.3], np.float32)
_HARD_EDGES = np.array([0, 1, 0, 1, 0, 1, 0], bool)


@dataclass(frozen=True)
class Noise:
    """Zero-mean, unit-std noise fields, a little larger than the frame so crops can move."""

    fine: np.ndarray
    medium: np.ndarray
    coarse: np.ndarray
    pad: int


@functools.lru_cache(maxsize=4)
def noise_bank(height: int, width: int) -> Noise:
    # A fixed seed: the bank is shared by every railcar of this size, so it must not depend on
    # the order in which railcars are rendered.
    rng = np.random.default_rng(20240611)
    pad = max(8, height // 8)
    h, w = height + pad, width + pad

    def smooth(cell: int) -> np.ndarray:
        small = rng.standard_normal((h // cell + 3, w // cell + 3), dtype=np.float32)
        field = cv2.resize(small, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)
        field = field[cell : cell + h, cell : cell + w]
        return (field - field.mean()) / (field.std() + 1e-6)

    fine = rng.standard_normal((h, w), dtype=np.float32)
    scale = max(1, height // 180)
    return Noise(fine=fine, medium=smooth(3 * scale), coarse=smooth(24 * scale), pad=pad)


def frame_noise(height: int, width: int) -> Noise:
    """The bank for frames of this size; sizes are rounded up so that nearby sizes share one."""
    return noise_bank(-(-height // 64) * 64, -(-width // 64) * 64)


@dataclass
class LayerSurface:
    """The rendered interior (uint8 RGB) and its class map, of the same height and width."""

    image: np.ndarray
    classes: np.ndarray

    @property
    def contamination(self) -> float:
        """Inclusion pixels over scrap pixels (metal or inclusion); 0.0 for an empty surface."""
        return inclusion_share(self.classes)


def inclusion_share(classes: np.ndarray) -> float:
    """Inclusion pixels over scrap pixels of a class map: the definition of the truth."""
    scrap = int(np.count_nonzero(classes >= METAL))
    return float(np.count_nonzero(classes >= SOIL)) / scrap if scrap else 0.0


def _fixed(poly: np.ndarray) -> np.ndarray:
    return np.round(poly * (1 << _SHIFT)).astype(np.int32)


class _Canvas:
    """Buffers of one layer; piece id 0 is the pile base (or floor) under everything."""

    def __init__(self, h: int, w: int, s: float) -> None:
        self.ids = np.zeros((h, w), np.int32)
        self.shadow = np.zeros((h, w), np.int32)  # id of the highest piece casting a shadow here
        self.shade = np.ones((h, w), np.float32)
        self.spec = np.zeros((h, w), np.float32)
        self.classes = np.full((h, w), METAL, np.uint8)
        self.colour: list[np.ndarray] = [np.array(_PILE_COLOUR)]
        self.kind: list[int] = [_PILE]
        self.rust: list[float] = [-9.0]
        self.shadow_len = 0.012 * s

    def draw(self, p: Piece) -> None:
        j = len(self.colour)
        self.colour.append(p.colour)
        self.kind.append(p.kind)
        self.rust.append(p.rust)
        outline = [_fixed(q) for q in p.outline]
        args = (cv2.LINE_8, _SHIFT)
        cv2.fillPoly(self.ids, outline, j, *args)
        cv2.fillPoly(self.classes, outline, p.kind, *args)
        cv2.fillPoly(self.shade, outline, 1.0, *args)
        cv2.fillPoly(self.spec, outline, 0.0, *args)
        off = np.round(SHADOW_DIR * self.shadow_len * p.height * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(self.shadow, [q + off for q in outline], j, *args)
        for polys, shade, spec in p.facets:
            fixed = [_fixed(q) for q in polys]
            cv2.fillPoly(self.shade, fixed, shade, *args)
            if spec > 0.01:
                cv2.fillPoly(self.spec, fixed, spec, *args)

    def paint(self, noise: Noise, off: tuple[int, int], inside: np.ndarray | None, s: float):
        """Colour, texture, rust, shading, shadows and edges, all at once: uint8 RGB."""
        h, w = self.ids.shape
        ids = self.ids
        crop = (slice(off[1], off[1] + h), slice(off[0], off[0] + w))
        fine, med, coarse = noise.fine[crop], noise.medium[crop], noise.coarse[crop]
        col = np.array(self.colour, np.float32)[ids]
        code = np.array(self.kind, np.uint8)[ids]
        if inside is not None:
            floor = (ids == 0) & (inside == 0)
            code[floor] = FLOOR
            col[floor] = _FLOOR_COLOUR
        light = _FINE[code] * fine
        light += _MEDIUM[code] * med
        light += 1
        if SOIL in self.kind:
            light -= 0.18 * ((code == SOIL) & (med > 1.0))
        if CONCRETE in self.kind:
            light -= 0.4 * ((code == CONCRETE) & (fine > 1.9))
        rust = coarse * np.float32(0.6)
        rust += np.float32(0.25) * med
        rust += np.array(self.rust, np.float32)[ids]
        np.clip(rust, 0, 1, out=rust)
        col += (_RUST - col) * rust[..., None]
        light *= self.shade
        np.multiply(light, np.float32(0.55), out=light, where=self.shadow > ids)
        # Edges: the side of a piece facing the sun catches light, the far side is dark.
        e = max(1, round(s / 300))
        hard = _HARD_EDGES[code]
        lit = (ids[e:, e:] > ids[:-e, :-e]) & hard[e:, e:]
        np.multiply(light[e:, e:], np.float32(1.3), out=light[e:, e:], where=lit)
        dark = (ids[:-e, :-e] > ids[e:, e:]) & hard[:-e, :-e]
        np.multiply(light[:-e, :-e], np.float32(0.6), out=light[:-e, :-e], where=dark)
        col *= light[..., None]
        rust -= 1
        rust *= self.spec
        col -= np.float32(255) * rust[..., None]  # specular, dulled where rusty
        # A slight blur stands in for anti-aliasing and the camera's own softness.
        col = cv2.GaussianBlur(col, (0, 0), 0.6)
        return np.clip(col, 0, 255, out=col).astype(np.uint8)


def render_layer(
    *,
    rng: np.random.Generator,
    grade: str,
    contamination: float,
    kind_weights: np.ndarray,
    size: tuple[int, int],
    offset: tuple[int, int],
    frame_size: tuple[int, int],
    bottom: bool = False,
) -> LayerSurface:
    """Draw one layer of `grade` scrap with about `contamination` (a fraction) of inclusions.

    `size` is the interior (height, width), `offset` its (x, y) position in a frame of
    `frame_size` (height, width): textures come from that frame's noise bank. A `bottom` layer
    leaves the railcar floor visible around the pile; the floor is not scrap.
    """
    h, w = size
    s = float(h)
    noise = frame_noise(*frame_size)
    off = (offset[0] + int(rng.integers(noise.pad)), offset[1] + int(rng.integers(noise.pad)))
    canvas = _Canvas(h, w, s)
    inside = None
    if bottom:
        inside = np.zeros((h, w), np.uint8)
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        r = 1 + 0.12 * np.cos(3 * t + rng.uniform(0, 6)) + 0.08 * np.cos(5 * t + rng.uniform(0, 6))
        pile = np.stack([w / 2 + 0.47 * w * r * np.cos(t), h / 2 + 0.5 * h * r * np.sin(t)], 1)
        cv2.fillPoly(inside, [_fixed(pile)], 1, cv2.LINE_8, _SHIFT)
        canvas.classes[inside == 0] = FLOOR

    def centre() -> tuple[float, float]:
        while True:
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            if inside is None or inside[int(y), int(x)]:
                return x, y

    area = float(h * w) * (1.0 if inside is None else inside.mean())
    covered, pieces = 0.0, []
    while covered < 1.7 * area:
        pieces.append(metal_piece(grade, s, *centre(), rng))
        covered += pieces[-1].area
    on_top = len(pieces) - len(pieces) // 14
    for p in pieces[:on_top]:
        canvas.draw(p)
    if contamination > 0:
        _add_inclusions(canvas, contamination, kind_weights, s, rng, centre)
    for p in pieces[on_top:]:
        canvas.draw(p)
    if contamination > 0:
        _add_inclusions(canvas, contamination, kind_weights, s, rng, centre)
    image = canvas.paint(noise, off, inside, s)
    return LayerSurface(image=image, classes=canvas.classes)


def _add_inclusions(
    canvas: _Canvas, goal: float, kind_weights: np.ndarray, s: float, rng, centre
) -> None:
    """Add inclusion blobs until they cover `goal` (a fraction) of the scrap pixels."""
    classes = canvas.classes
    scrap = int(np.count_nonzero(classes))
    have = int(np.count_nonzero(classes >= SOIL))
    typical = s * s * rng.uniform(0.012, 0.03)
    kinds = list(INCLUSION_KINDS)
    for _ in range(500):
        missing = goal * scrap - have
        if missing < max(4.0, 2e-4 * scrap):
            return
        size = max(6.0, min(typical * rng.uniform(0.4, 1.6), missing * 1.1))
        p = inclusion_piece(int(rng.choice(kinds, p=kind_weights)), size, *centre(), rng)
        pts = np.vstack(p.outline)
        x0, y0 = (max(0, int(v) - 1) for v in pts.min(axis=0))
        x1, y1 = (int(v) + 2 for v in pts.max(axis=0))
        roi = classes[y0:y1, x0:x1]
        incl, floor = int(np.count_nonzero(roi >= SOIL)), int(np.count_nonzero(roi == FLOOR))
        canvas.draw(p)
        # Drawn over the floor, a blob adds scrap pixels as well as inclusion pixels.
        have += int(np.count_nonzero(roi >= SOIL)) - incl
        scrap += floor - int(np.count_nonzero(roi == FLOOR))
