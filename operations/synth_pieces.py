"""Geometry and shading of single synthetic scrap pieces and inclusions, by grade and kind.

A piece is a few polygons in canvas pixels: its outline (what it covers) and facets drawn over
the outline, each with a Lambert shade and a specular strength from a surface normal. Curved
shapes (bars, castings, tyres) are bands of facets, which is far cheaper than per-pixel shading
and reads the same at camera resolution.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

# Class map values, shared with synth_scrap. FLOOR is the railcar floor, which is not scrap.
FLOOR, METAL, SOIL, WOOD, RUBBER, CONCRETE = 0, 1, 2, 3, 4, 5

_SUN = np.array([-0.36, -0.48, 0.8])  # towards the sun: top-left of the frame, 53 degrees up
_HALF = (_SUN + (0, 0, 1)) / np.linalg.norm(_SUN + (0, 0, 1))  # Blinn half-vector, camera above
SHADOW_DIR = -_SUN[:2] / np.linalg.norm(_SUN[:2])  # shadows fall bottom-right


@dataclass
class Piece:
    outline: list[np.ndarray]  # filled together: a second polygon inside the first is a hole
    facets: list[tuple[list[np.ndarray], float, float]] = field(default_factory=list)
    colour: np.ndarray = field(default_factory=lambda: np.zeros(3))
    kind: int = METAL
    rust: float = -9.0  # bias on the rust field; very negative means no rust
    height: float = 1.0  # how far it stands up, for the length of its shadow

    @property
    def area(self) -> float:
        return float(cv2.contourArea(self.outline[0].astype(np.float32)))


def _light(normal: np.ndarray, gloss: float) -> tuple[float, float]:
    """Lambert shade (about 1 for a surface facing up) and Blinn specular strength."""
    x, y, z = (float(c) for c in normal)
    norm = math.sqrt(x * x + y * y + z * z)
    lambert = max(0.0, (x * _SUN[0] + y * _SUN[1] + z * _SUN[2]) / norm)
    blinn = max(0.0, (x * _HALF[0] + y * _HALF[1] + z * _HALF[2]) / norm)
    return 0.35 + 0.78 * lambert, gloss * blinn**24


def _rot(pts: np.ndarray, cx: float, cy: float, th: float) -> np.ndarray:
    c, s = math.cos(th), math.sin(th)
    return pts @ np.array([[c, s], [-s, c]]) + (cx, cy)


def _rect(cx: float, cy: float, a: float, b: float, th: float, v0=-1.0, v1=1.0) -> np.ndarray:
    return _rot(np.array([[-a, v0 * b], [a, v0 * b], [a, v1 * b], [-a, v1 * b]]), cx, cy, th)


@functools.lru_cache(maxsize=8)
def _angles(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return t[None, :] * np.arange(2, 6)[:, None], np.cos(t), np.sin(t)


def _radial(cx, cy, a, b, th, rough: float, rng, n: int = 24) -> np.ndarray:
    """A blob: an ellipse whose radius wobbles with a few random harmonics."""
    kt, cos_t, sin_t = _angles(n)
    amp = rough / np.arange(2, 6) * rng.normal(size=4)
    r = 1 + amp @ np.cos(kt + rng.uniform(0, 2 * np.pi, (4, 1)))
    r = np.minimum(np.maximum(r, 0.45), 1.5)  # np.clip is slow on small arrays
    pts = np.empty((n, 2))
    pts[:, 0], pts[:, 1] = a * r * cos_t, b * r * sin_t
    return _rot(pts, cx, cy, th)


def _tilted(rng, spread: float) -> np.ndarray:
    return np.array([rng.normal(0, spread), rng.normal(0, spread), 1.0])


def _plate(cx, cy, a, b, th, rng, gloss: float, jitter: float = 0.0) -> Piece:
    poly = _rect(cx, cy, a, b, th) + rng.normal(0, jitter, (4, 2))
    return Piece([poly], [([poly], *_light(_tilted(rng, 0.35), gloss))])


def _crumpled(poly: np.ndarray, rng, gloss: float, spread: float) -> Piece:
    """A bent or crumpled sheet: triangles around an off-centre apex, each tilted its own way."""
    apex = poly.mean(axis=0) + rng.normal(0, 0.12, 2) * np.ptp(poly, axis=0)
    n = len(poly)
    cuts = np.sort(rng.choice(n, size=min(n, int(rng.integers(3, 6))), replace=False))
    facets = []
    for i, start in enumerate(cuts):
        stop = cuts[(i + 1) % len(cuts)]
        idx = [(start + j) % n for j in range((stop - start) % n + 1)]
        facets.append(([np.vstack([apex, poly[idx]])], *_light(_tilted(rng, spread), gloss)))
    return Piece([poly], facets)


def _cylinder(cx, cy, a, b, th, gloss: float, bands: int = 7) -> Piece:
    """Bar, pipe, rail or log lying in the image plane: bands across its width."""
    across = np.array([-math.sin(th), math.cos(th), 0.0])
    edges = np.linspace(-1, 1, bands + 1)
    facets = []
    for v0, v1 in zip(edges[:-1], edges[1:], strict=True):
        v = (v0 + v1) / 2
        normal = v * across + math.sqrt(max(0.0, 1 - v * v)) * np.array([0, 0, 1.0])
        facets.append(([_rect(cx, cy, a, b, th, v0, v1)], *_light(normal, gloss)))
    return Piece([_rect(cx, cy, a, b, th)], facets)


def _beam(cx, cy, a, b, th, gloss: float) -> Piece:
    """An I- or H-beam on its side: two flange ridges and a web between them, half in shade."""
    across = np.array([-math.sin(th), math.cos(th), 0.0])
    up = np.array([0, 0, 1.0])
    lit_side = -1.0 if across @ _SUN > 0 else 1.0  # the web's shaded strip is beside this flange
    parts = [
        (-1, -0.8, up),
        (-0.8, -0.7, across),
        (-0.7, 0.7, up),
        (0.7, 0.8, -across),
        (0.8, 1, up),
    ]
    facets = []
    for v0, v1, normal in parts:
        shade, spec = _light(normal, gloss)
        facets.append(([_rect(cx, cy, a, b, th, v0, v1)], shade, spec))
    v0, v1 = (-0.7, -0.35) if lit_side > 0 else (0.35, 0.7)
    facets.append(([_rect(cx, cy, a, b, th, v0, v1)], 0.42, 0.0))  # the flange's shadow
    return Piece([_rect(cx, cy, a, b, th)], facets)


def _dome(poly: np.ndarray, gloss: float, rings: int = 6, relief: float = 1.0) -> Piece:
    """A rounded lump: nested copies of its outline, shifted towards the sun as they shrink."""
    centre = poly.mean(axis=0)
    radius = float(np.sqrt(((poly - centre) ** 2).sum(axis=1).mean()))
    facets = []
    for k in range(rings):
        f = 1.0 - 0.8 * k / (rings - 1)
        lean = (1 - f) * 0.4 * radius * -SHADOW_DIR
        shade = 1.0 + relief * (0.55 * (1 - f) ** 0.8 - 0.45)
        spec = gloss if k == rings - 1 else 0.0
        facets.append(([centre + lean + f * (poly - centre)], shade, spec))
    return Piece([poly], facets)


def _pick(rng, options: list[tuple[int, int, int]], jitter: float = 0.1) -> np.ndarray:
    colour = np.array(options[int(rng.integers(len(options)))], float)
    return colour * rng.uniform(1 - jitter, 1 + jitter)


_STEEL = [(118, 120, 124), (98, 100, 104), (138, 139, 142), (82, 84, 88)]
_RUSTY = [(112, 74, 52), (98, 66, 48), (124, 84, 58), (86, 60, 46)]
_BRIGHT = [(146, 148, 148), (158, 160, 162), (136, 140, 144)]
_PAINT = [(86, 98, 110), (114, 72, 64), (90, 104, 84), (140, 130, 90)]
_CAST = [(70, 70, 72), (80, 79, 78), (62, 62, 64), (88, 85, 82)]


def metal_piece(grade: str, s: float, cx: float, cy: float, rng: np.random.Generator) -> Piece:
    """One scrap piece of `grade` centred near (cx, cy); `s` is the interior height (about 3 m)."""
    th = rng.uniform(0, np.pi)
    u = rng.random()
    if grade == "3A":  # heavy: thick plates, beams, rails, chunky offcuts
        colour, rust = _pick(rng, _STEEL if rng.random() < 0.45 else _RUSTY), rng.uniform(0.4, 0.9)
        if u < 0.35:
            a, b = rng.uniform(0.08, 0.22) * s, rng.uniform(0.06, 0.16) * s
            p = _plate(cx, cy, a, b, th, rng, 0.25, 0.01 * s)
        elif u < 0.6:
            a, b = rng.uniform(0.25, 0.55) * s, rng.uniform(0.035, 0.065) * s
            p = _beam(cx, cy, a, b, th, 0.35)
        elif u < 0.8:
            a, b = rng.uniform(0.2, 0.5) * s, rng.uniform(0.015, 0.03) * s
            p = _cylinder(cx, cy, a, b, th, 0.6)
        else:
            a = rng.uniform(0.05, 0.12) * s
            p = _crumpled(_radial(cx, cy, a, a * rng.uniform(0.6, 1), th, 0.25, rng), rng, 0.2, 0.3)
        p.height = 1.6
    elif grade == "3A1":  # medium and mixed: plates, bars, bent sheet, pipes
        colour, rust = _pick(rng, _STEEL if rng.random() < 0.55 else _RUSTY), rng.uniform(0.2, 0.7)
        if u < 0.25:
            a, b = rng.uniform(0.04, 0.12) * s, rng.uniform(0.03, 0.09) * s
            p = _plate(cx, cy, a, b, th, rng, 0.35, 0.008 * s)
        elif u < 0.45:
            a, b = rng.uniform(0.1, 0.3) * s, rng.uniform(0.01, 0.022) * s
            p = _cylinder(cx, cy, a, b, th, 0.7, 5)
        elif u < 0.75:
            a, b = rng.uniform(0.04, 0.1) * s, rng.uniform(0.03, 0.08) * s
            p = _crumpled(_radial(cx, cy, a, b, th, 0.45, rng), rng, 0.4, 0.6)
        elif u < 0.88:
            a, b = rng.uniform(0.1, 0.25) * s, rng.uniform(0.025, 0.045) * s
            p = _cylinder(cx, cy, a, b, th, 0.6)
        else:
            a = rng.uniform(0.03, 0.07) * s
            p = _crumpled(_radial(cx, cy, a, a * 0.8, th, 0.3, rng), rng, 0.25, 0.3)
        p.height = 1.2
    elif grade == "3AH":  # light: thin bent sheet, strips, many small bright pieces
        roll = rng.random()
        palette = (
            _BRIGHT if roll < 0.3 else _PAINT if roll < 0.4 else _STEEL if roll < 0.75 else _RUSTY
        )
        colour, rust = _pick(rng, palette), rng.uniform(-0.1, 0.5)
        if u < 0.7:
            a, b = rng.uniform(0.03, 0.075) * s, rng.uniform(0.025, 0.065) * s
            p = _crumpled(_radial(cx, cy, a, b, th, 0.6, rng), rng, 0.4, 0.7)
        else:  # a strip bent once
            a, b = rng.uniform(0.05, 0.12) * s, rng.uniform(0.006, 0.014) * s
            bend = th + rng.uniform(-0.8, 0.8)
            left = _rect(cx - a / 2 * math.cos(th), cy - a / 2 * math.sin(th), a / 2, b, th)
            mid = left[1:3].mean(axis=0)
            right = _rect(
                mid[0] + a / 2 * math.cos(bend), mid[1] + a / 2 * math.sin(bend), a / 2, b, bend
            )
            outline = np.array([left[0], left[1], right[1], right[2], left[2], left[3]])
            p = Piece([outline], [([q], *_light(_tilted(rng, 0.6), 0.7)) for q in (left, right)])
        p.height = 0.8
    else:  # cast iron: chunky rounded dark castings, brake shoes, lumps
        colour, rust = _pick(rng, _CAST), rng.uniform(0.0, 0.45)
        if u < 0.55:
            a = rng.uniform(0.035, 0.09) * s
            p = _dome(_radial(cx, cy, a, a * rng.uniform(0.6, 1.0), th, 0.35, rng), 0.15)
        elif u < 0.8:  # brake shoe: a thick arc
            big_r, w = rng.uniform(0.08, 0.13) * s, rng.uniform(0.02, 0.032) * s
            t = np.linspace(-0.5, 0.5, 10) * rng.uniform(0.8, 1.3) + th
            ox, oy = cx - big_r * math.cos(th), cy - big_r * math.sin(th)

            def arc(r: float) -> np.ndarray:
                return np.stack([ox + r * np.cos(t), oy + r * np.sin(t)], axis=1)

            p = Piece([np.vstack([arc(big_r + w), arc(big_r - w)[::-1]])])
            for f0, f1, lift in ((1.0, 0.45, 0.6), (0.45, -0.45, 1.0), (-0.45, -1.0, 0.6)):
                band = np.vstack([arc(big_r + f0 * w), arc(big_r + f1 * w)[::-1]])
                p.facets.append(([band], 0.6 + 0.4 * lift, 0.05 * lift))
        else:
            a = rng.uniform(0.05, 0.09) * s
            p = _dome(_radial(cx, cy, a, a * rng.uniform(0.6, 0.9), th, 0.12, rng), 0.1, 4, 0.6)
        p.height = 1.4
    p.colour, p.rust = colour, (rust - 0.5) * 2.2
    return p


def inclusion_piece(
    kind: int, size: float, cx: float, cy: float, rng: np.random.Generator
) -> Piece:
    """A non-metallic inclusion of about `size` pixels centred near (cx, cy)."""
    th = rng.uniform(0, np.pi)
    if kind == WOOD:  # planks and branches: long, with grain along the length
        aspect = rng.uniform(3, 8)
        b = math.sqrt(size / (4 * aspect))
        a = aspect * b
        colour = _pick(rng, [(170, 132, 88), (150, 120, 86), (126, 110, 92)])
        if rng.random() < 0.3:
            p = _cylinder(cx, cy, a, b, th, 0.0, 5)
        else:
            edges = np.sort(np.r_[-1.0, rng.uniform(-1, 1, int(rng.integers(4, 9))), 1.0])
            p = Piece([_rect(cx, cy, a, b, th)])
            for v0, v1 in zip(edges[:-1], edges[1:], strict=True):
                p.facets.append(([_rect(cx, cy, a, b, th, v0, v1)], rng.uniform(0.8, 1.05), 0.0))
        p.height = 0.8
    elif kind == RUBBER and rng.random() < 0.4:  # a tyre lying flat: a ring
        a = math.sqrt(size / (np.pi * 0.64))
        outer = _radial(cx, cy, a, a * rng.uniform(0.8, 1.0), th, 0.03, rng, 32)
        centre = np.array([cx, cy])
        hole = 0.58 + 0.06 * rng.random()
        p = Piece([outer, centre + hole * (outer - centre)])
        for f0, f1, shade in ((1.0, 0.9, 0.7), (0.9, 0.75, 1.0), (0.75, hole, 0.8)):
            p.facets.append(
                ([centre + f0 * (outer - centre), centre + f1 * (outer - centre)], shade, 0.02)
            )
        colour = _pick(rng, [(36, 35, 35), (44, 43, 42)], 0.05)
        p.height = 1.0
    else:
        aspect = rng.uniform(1.0, 2.2)
        b = math.sqrt(size / (np.pi * aspect))
        rough = {SOIL: 0.7, RUBBER: 0.45, CONCRETE: 0.25}[kind]
        poly = _radial(cx, cy, aspect * b, b, th, rough, rng)
        if kind == SOIL:
            p = _dome(poly, 0.0, 4, 0.5)
            colour = _pick(rng, [(104, 82, 58), (92, 74, 55), (116, 92, 64)], 0.08)
            p.height = 0.4
        elif kind == RUBBER:  # belts and mats: matte, almost black
            p = _crumpled(poly, rng, 0.02, 0.3)
            colour = _pick(rng, [(34, 33, 33), (42, 41, 40), (30, 30, 32)], 0.05)
            p.height = 0.6
        else:  # concrete and brick rubble: angular, light grey
            p = _crumpled(poly, rng, 0.0, 0.5)
            colour = _pick(rng, [(168, 166, 160), (152, 150, 146), (180, 176, 168)], 0.06)
            p.height = 1.0
    p.colour, p.kind = colour, kind
    return p
